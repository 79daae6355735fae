// placeholder: the lobby page's script, written with the web client split.
