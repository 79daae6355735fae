// codec.js: place's own bytes in JavaScript, the twin of
// examples/place/src/msg.rs. Inside the platform's envelope the page sends
// a PlaceMsg (Game.data) and receives a PlaceWelcome (Welcome.game), a
// PlaceState whenever it changed (State.data) and PlaceEvents, reliably and
// in order (Event.data). Written with session.js's bincode primitives; not
// for the envelope, sessions or reconnects (../session.js) nor the page
// (game.js).
//
// Shapes (numbers are JavaScript Numbers):
//   PlaceMsg      { type: "Paint", x, y, color }
//   PlaceEvent    { type: "Painted", x, y, color, by } | { type: "Rejected", reason }
//   PlaceState    { painted, canvas: Uint8Array(size * size), pixels, readyAt: tick | null }
//   PlaceWelcome  { size, painted }

import { MAX_SERVER_MSG_BYTES, decodeWith, encodeWith } from "../session.js";

/** The room type's name on the server. */
export const ROOM_TYPE = "place";

/** The palette, by colour index (msg.rs: COLORS); 0 is the background. */
export const PALETTE = Object.freeze([
  "#ffffff", "#222222", "#e0443e", "#f2a930", "#f2e030", "#3fae4a", "#3b7be0", "#9b59d0",
]);

export function encodeMsg(msg) {
  if (msg.type !== "Paint") throw new TypeError(`unknown PlaceMsg type ${msg.type}`);
  return encodeWith((w) => {
    w.variant(0);
    w.u8(msg.x, "Paint.x");
    w.u8(msg.y, "Paint.y");
    w.u8(msg.color, "Paint.color");
  });
}

export function decodeEvent(data) {
  return decodeWith(data, MAX_SERVER_MSG_BYTES, (r) =>
    r.variant(2, "PlaceEvent") === 0
      ? { type: "Painted", x: r.u8(), y: r.u8(), color: r.u8(), by: r.u32() }
      : { type: "Rejected", reason: r.str() },
  );
}

export function decodeState(data) {
  return decodeWith(data, MAX_SERVER_MSG_BYTES, (r) => ({
    painted: r.u32(),
    canvas: r.byteVec(),
    pixels: r.u32(),
    readyAt: r.option(() => r.u32()),
  }));
}

export function decodeWelcome(data) {
  return decodeWith(data, MAX_SERVER_MSG_BYTES, (r) => ({ size: r.u8(), painted: r.u32() }));
}
