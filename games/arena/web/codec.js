// codec.js: the arena's own bytes in JavaScript, the twin of
// games/arena/src/msg.rs. Inside the platform's envelope the arena sends
// a Move (Game.data), and receives an ArenaWelcome (Welcome.game) and an
// ArenaState per tick (State.data); it sends no events.
//
// Not for the envelope, sessions or reconnects (../session.js, whose
// bincode primitives this file is written with), and not for drawing or
// input (game.js, motion.js). Tested against the Rust encoder's golden
// vectors (games/arena/golden/vectors.json) by
// server/web/test/arena-codec.test.mjs.
//
// Shapes (every number a JavaScript Number):
//   Move          { dx, dy }              each -128..127 (-128 reads as -127)
//   ArenaWelcome  { worldWidth, worldHeight, viewRadius, playerSpeed }
//   ArenaState    { players, entities: [{ id, kind, x, y, score }] }
//                 kind: "Player" | "Pickup" | "DroppedPlayer"

import { MAX_CLIENT_MSG_BYTES, MAX_SERVER_MSG_BYTES, decodeWith, encodeWith } from "../session.js";

/** EntityKind variants, by wire index (declaration order in msg.rs). */
export const ENTITY_KINDS = Object.freeze(["Player", "Pickup", "DroppedPlayer"]);

/** The smallest encoding of one entity: five one-byte fields. */
const MIN_ENTITY_BYTES = 5;

/** The room type's name on the server. */
export const ROOM_TYPE = "arena";

/** The room options the arena takes (quick join matches on them). */
export const OPTION_KEYS = Object.freeze(["pace"]);

export function encodeMove(move) {
  return encodeWith((w) => {
    w.i8(move.dx, "Move.dx");
    w.i8(move.dy, "Move.dy");
  });
}

/** The server's side of a Move; for tests and tools. */
export function decodeMove(data) {
  return decodeWith(data, MAX_CLIENT_MSG_BYTES, (r) => ({ dx: r.i8(), dy: r.i8() }));
}

export function encodeWelcome(welcome) {
  return encodeWith((w) => {
    w.u16(welcome.worldWidth, "ArenaWelcome.worldWidth");
    w.u16(welcome.worldHeight, "ArenaWelcome.worldHeight");
    w.u16(welcome.viewRadius, "ArenaWelcome.viewRadius");
    w.u16(welcome.playerSpeed, "ArenaWelcome.playerSpeed");
  });
}

export function decodeWelcome(data) {
  return decodeWith(data, MAX_SERVER_MSG_BYTES, (r) => ({
    worldWidth: r.u16(),
    worldHeight: r.u16(),
    viewRadius: r.u16(),
    playerSpeed: r.u16(),
  }));
}

/** The server's side of a state; the tests' fake server uses it. */
export function encodeState(state) {
  return encodeWith((w) => {
    w.u16(state.players, "ArenaState.players");
    w.seq(
      state.entities,
      (e) => {
        const kind = ENTITY_KINDS.indexOf(e.kind);
        if (kind < 0) throw new RangeError(`unknown entity kind ${e.kind}`);
        w.u32(e.id, "Entity.id");
        w.variant(kind, "Entity.kind");
        w.u16(e.x, "Entity.x");
        w.u16(e.y, "Entity.y");
        w.u32(e.score, "Entity.score");
      },
      "ArenaState.entities",
    );
  });
}

export function decodeState(data) {
  return decodeWith(data, MAX_SERVER_MSG_BYTES, (r) => ({
    players: r.u16(),
    entities: r.seq(
      () => ({
        id: r.u32(),
        kind: ENTITY_KINDS[r.variant(ENTITY_KINDS.length, "EntityKind")],
        x: r.u16(),
        y: r.u16(),
        score: r.u32(),
      }),
      MIN_ENTITY_BYTES,
    ),
  }));
}

/**
 * The key that follows one entity across states. A player keeps its id
 * when it turns from Player into DroppedPlayer and back, and ids are unique
 * only per kind, so players share one key space and pickups have another.
 */
export function entityKey(entity) {
  return entity.kind === "Pickup" ? `k${entity.id}` : `p${entity.id}`;
}
