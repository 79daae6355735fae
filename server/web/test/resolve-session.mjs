// A Node module resolve hook (registered by game-modules.mjs): the
// specifier "../session.js" imported by a game's module under games/ is the
// generic module in server/web/, as it is in the browser. Everything else
// resolves as usual.

const SESSION = new URL("../session.js", import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier === "../session.js" && context.parentURL && context.parentURL.includes("/games/")) {
    return next(SESSION, context);
  }
  return next(specifier, context);
}
