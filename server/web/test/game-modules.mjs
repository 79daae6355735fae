// Loads the games' browser modules (games/*/web/*.js) into Node for the
// unit tests. In the browser a game's page lives at /NAME/ and imports the
// generic module as "../session.js", which the server serves from
// server/web/; on disk that path does not exist next to the game, so this
// module registers a resolve hook that sends it to server/web/session.js
// (the same file, hence the same module instance the tests import), then
// imports the games' modules.
//
// Not a test itself (no *.test.mjs name), and not used by the pages.

import { register } from "node:module";

register("./resolve-session.mjs", import.meta.url);

export const arenaCodec = await import("../../../games/arena/web/codec.js");
export const arenaMotion = await import("../../../games/arena/web/motion.js");
export const fourCodec = await import("../../../games/four/web/codec.js");
