// codec.js: four-in-a-row's own bytes in JavaScript, the twin of
// games/four/src/msg.rs. Inside the platform's envelope the game sends a
// FourMsg (Game.data) and receives a FourWelcome (Welcome.game), a
// FourState whenever it changed (State.data) and FourEvents, reliably and
// in order (Event.data). Plus the few board facts the page needs.
//
// Not for the envelope, sessions or reconnects (../session.js, whose
// bincode primitives this file is written with), and not for the page
// (game.js). Tested against the Rust encoder's golden vectors
// (games/four/golden/vectors.json) by server/web/test/four-codec.test.mjs.
//
// Shapes (numbers are JavaScript Numbers; a seat is "Red" or "Yellow"):
//   FourMsg      { type: "Drop", column } | { type: "Rematch" }
//   FourEvent    { type: "Seated", seat, player } | { type: "Moved", seat,
//                column, row, number } | { type: "Won", seat, cells } |
//                { type: "Draw" } | { type: "Forfeit", winner } |
//                { type: "Dropped" | "Resumed" | "Left" | "RematchAsked",
//                seat } | { type: "NewGame", game, first } |
//                { type: "Rejected", reason }
//   FourState    { you: seat | null, board: number[42], turn: seat | null,
//                status, seats: [SeatState, SeatState] (red, yellow),
//                game, moves }
//   Status       { type: "Waiting" | "Playing" | "Draw" } |
//                { type: "Won", seat, cells } | { type: "Forfeit", winner }
//   SeatState    { player: number | null, connected, wins, rematch }
//   FourWelcome  { columns, rows }
// The board is row-major from the bottom row (index row * 7 + column):
// 0 empty, 1 red, 2 yellow; `cells` are such indices.

import { MAX_CLIENT_MSG_BYTES, MAX_SERVER_MSG_BYTES, decodeWith, encodeWith } from "../session.js";

/** The room type's name on the server. */
export const ROOM_TYPE = "four";

export const COLUMNS = 7;
export const ROWS = 6;
export const CELLS = COLUMNS * ROWS;

/** Seat variants, by wire index; a seat's cell value is its index + 1. */
export const SEATS = Object.freeze(["Red", "Yellow"]);

const MSGS = ["Drop", "Rematch"];
const EVENTS = [
  "Seated",
  "Moved",
  "Won",
  "Draw",
  "Forfeit",
  "Dropped",
  "Resumed",
  "Left",
  "RematchAsked",
  "NewGame",
  "Rejected",
];
const STATUSES = ["Waiting", "Playing", "Won", "Draw", "Forfeit"];

/** Events whose only field is `seat`. */
const SEAT_EVENTS = new Set(["Dropped", "Resumed", "Left", "RematchAsked"]);

/** The board index of a cell. */
export function cellIndex(column, row) {
  return row * COLUMNS + column;
}

/** The value of a seat's discs on the board: 1 for red, 2 for yellow. */
export function seatCell(seat) {
  return SEATS.indexOf(seat) + 1;
}

/** The other seat. */
export function otherSeat(seat) {
  return seat === "Red" ? "Yellow" : "Red";
}

function writeSeat(w, seat, field) {
  const index = SEATS.indexOf(seat);
  if (index < 0) throw new RangeError(`${field}: ${seat} is not a seat`);
  w.variant(index, field);
}

function readSeat(r) {
  return SEATS[r.variant(SEATS.length, "Seat")];
}

function variantIndex(names, type, what) {
  const index = names.indexOf(type);
  if (index < 0) throw new TypeError(`unknown ${what} type ${type}`);
  return index;
}

export function encodeMsg(msg) {
  return encodeWith((w) => {
    w.variant(variantIndex(MSGS, msg.type, "FourMsg"));
    if (msg.type === "Drop") w.u8(msg.column, "Drop.column");
  });
}

/** The server's side of a message; for tests and tools. */
export function decodeMsg(data) {
  return decodeWith(data, MAX_CLIENT_MSG_BYTES, (r) =>
    r.variant(MSGS.length, "FourMsg") === 0 ? { type: "Drop", column: r.u8() } : { type: "Rematch" },
  );
}

/** The server's side of an event; the tests' fake server uses it. */
export function encodeEvent(event) {
  return encodeWith((w) => {
    const type = event.type;
    w.variant(variantIndex(EVENTS, type, "FourEvent"));
    if (type === "Seated") {
      writeSeat(w, event.seat, "Seated.seat");
      w.u32(event.player, "Seated.player");
    } else if (type === "Moved") {
      writeSeat(w, event.seat, "Moved.seat");
      w.u8(event.column, "Moved.column");
      w.u8(event.row, "Moved.row");
      w.u8(event.number, "Moved.number");
    } else if (type === "Won") {
      writeSeat(w, event.seat, "Won.seat");
      w.seq(event.cells, (c) => w.u8(c, "Won.cells"), "Won.cells");
    } else if (type === "Forfeit") {
      writeSeat(w, event.winner, "Forfeit.winner");
    } else if (SEAT_EVENTS.has(type)) {
      writeSeat(w, event.seat, `${type}.seat`);
    } else if (type === "NewGame") {
      w.u32(event.game, "NewGame.game");
      writeSeat(w, event.first, "NewGame.first");
    } else if (type === "Rejected") {
      w.str(event.reason, "Rejected.reason");
    }
  });
}

/** Cells as a plain array (a Vec<u8>: the bytes are the values). */
function readCells(r) {
  return Array.from(r.byteVec());
}

export function decodeEvent(data) {
  return decodeWith(data, MAX_SERVER_MSG_BYTES, (r) => {
    const type = EVENTS[r.variant(EVENTS.length, "FourEvent")];
    switch (type) {
      case "Seated":
        return { type, seat: readSeat(r), player: r.u32() };
      case "Moved":
        return { type, seat: readSeat(r), column: r.u8(), row: r.u8(), number: r.u8() };
      case "Won":
        return { type, seat: readSeat(r), cells: readCells(r) };
      case "Forfeit":
        return { type, winner: readSeat(r) };
      case "NewGame":
        return { type, game: r.u32(), first: readSeat(r) };
      case "Rejected":
        return { type, reason: r.str() };
      case "Draw":
        return { type };
      default:
        return { type, seat: readSeat(r) };
    }
  });
}

function writeStatus(w, status) {
  w.variant(variantIndex(STATUSES, status.type, "Status"));
  if (status.type === "Won") {
    writeSeat(w, status.seat, "Won.seat");
    w.seq(status.cells, (c) => w.u8(c, "Won.cells"), "Won.cells");
  } else if (status.type === "Forfeit") {
    writeSeat(w, status.winner, "Forfeit.winner");
  }
}

function readStatus(r) {
  const type = STATUSES[r.variant(STATUSES.length, "Status")];
  if (type === "Won") return { type, seat: readSeat(r), cells: readCells(r) };
  if (type === "Forfeit") return { type, winner: readSeat(r) };
  return { type };
}

/** The server's side of a state; the tests' fake server uses it. */
export function encodeState(state) {
  return encodeWith((w) => {
    w.option(state.you, (s) => writeSeat(w, s, "FourState.you"));
    w.seq(state.board, (c) => w.u8(c, "FourState.board"), "FourState.board");
    w.option(state.turn, (s) => writeSeat(w, s, "FourState.turn"));
    writeStatus(w, state.status);
    if (!Array.isArray(state.seats) || state.seats.length !== 2) throw new TypeError("FourState.seats: expected two seats");
    for (const seat of state.seats) {
      w.option(seat.player, (p) => w.u32(p, "SeatState.player"));
      w.bool(seat.connected, "SeatState.connected");
      w.u32(seat.wins, "SeatState.wins");
      w.bool(seat.rematch, "SeatState.rematch");
    }
    w.u32(state.game, "FourState.game");
    w.u8(state.moves, "FourState.moves");
  });
}

export function decodeState(data) {
  return decodeWith(data, MAX_SERVER_MSG_BYTES, (r) => {
    const you = r.option(() => readSeat(r));
    const board = readCells(r);
    const turn = r.option(() => readSeat(r));
    const status = readStatus(r);
    // A fixed array of two: no length prefix.
    const seats = [0, 1].map(() => ({
      player: r.option(() => r.u32()),
      connected: r.bool(),
      wins: r.u32(),
      rematch: r.bool(),
    }));
    return { you, board, turn, status, seats, game: r.u32(), moves: r.u8() };
  });
}

export function encodeWelcome(welcome) {
  return encodeWith((w) => {
    w.u8(welcome.columns, "FourWelcome.columns");
    w.u8(welcome.rows, "FourWelcome.rows");
  });
}

export function decodeWelcome(data) {
  return decodeWith(data, MAX_SERVER_MSG_BYTES, (r) => ({ columns: r.u8(), rows: r.u8() }));
}
