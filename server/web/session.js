// placeholder: the generic session module, split from arena.js.
