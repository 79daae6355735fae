// game.js: four in a row's page, served at /four/ (index.html). It wires
// a Session (/session.js) to the table: the board you click to drop a
// disc, whose turn it is, the result (win, draw, forfeit), the Rematch
// button, the players with their scores and a "reconnecting…" mark for a
// dropped one, the invite code and link of a private room, the move log
// built from the game's Moved events, notices, and the connection badge.
// It connects as soon as the page loads.
//
// The board on screen is always the server's latest state; the move log is
// built from events, which the session delivers once each and in order
// across drops, so the two agree (the end-to-end test checks that they
// do after a network drop).
//
// Not for protocol, reconnect or heartbeat logic (session.js) nor for the
// game's bytes (codec.js) or rules (games/four/src/lib.rs: the page never
// decides a move is legal, it only avoids sending ones that cannot be).
//
// Query-string options (all optional):
//   create=private  open a private room and show its invite code and link
//   create=public   open a listed room
//   code=CODE       join a room by its invite code
//   room=ID         join the public room with that id
//   (none)          quick join: a public room with a free seat, or a new one
//   plus the session options every game page takes (session.js,
//   sessionOptionsFromQuery): ws, backoffBase, backoffMax, pingInterval,
//   pongTimeout, connectTimeout.
//
// Debug hook, read-only, for tests and the curious: window.__four has
// getters for
//   connection   the connection state (session.js: idle, connecting,
//                connected, reconnecting, offline, stopped)
//   state        the latest FourState as decoded (codec.js), or null
//   seat, board, turn, status   fields of that state (seat is `you`)
//   moves        this game's moves from Moved events, in order:
//                [{ number, seat, column, row }]
//   allMoves     every move this page has seen, with its game number
//   events       every event seen, in order: [{ seq, type, ... }]
//   inviteCode, playerId, roomId, resumed   from the latest Welcome
//   welcomes     how many Welcomes this page has received
//   lastEvent    the last event processed (what a resume would say)
//   attempt, reason, code, log   the session's status and history
//   notice       the last notice shown to the player

import { Session, bindBadge, roomRequestFromQuery, sessionOptionsFromQuery } from "../session.js";
import { COLUMNS, ROOM_TYPE, ROWS, SEATS, cellIndex, decodeEvent, decodeState, decodeWelcome, encodeMsg, otherSeat } from "./codec.js";

const params = new URLSearchParams(location.search);
const { request, storageKey } = roomRequestFromQuery(params, ROOM_TYPE);
const session = new Session({ ...sessionOptionsFromQuery(params), room: request, storageKey });

const $ = (id) => document.getElementById(id);
const el = {
  badge: $("badge"),
  notice: $("notice"),
  turn: $("turn"),
  board: $("board"),
  seats: $("seats"),
  moves: $("moves"),
  invite: $("invite"),
  inviteCode: $("invite-code"),
  inviteLink: $("invite-link"),
  copy: $("copy"),
  rematch: $("rematch"),
  join: $("join"),
  leave: $("leave"),
};

// A spectator's or a replay viewer's page (?watch=, with ws= naming
// /watch/ROOM/ws or /replay/ID/ws) plays nothing: no buttons, no moves.
const watching = params.has("watch");
if (watching) for (const b of [el.rematch, el.join, el.leave, el.invite]) b.hidden = true;

/** The latest state from the server, decoded; null before the first. */
let state = null;
/** Every move seen, in order: { game, number, seat, column, row }. */
let moveLog = [];
/** Every event seen, in order: { seq, ...event }. */
let events = [];
/** The game the next Moved events belong to (from NewGame, else the state). */
let currentGame = null;
/** A Drop was sent and its effect has not arrived yet: no second click. */
let pending = false;
let welcomes = 0;
let lastNotice = "";

function showNotice(text) {
  lastNotice = text;
  el.notice.textContent = text;
}

/** How the page names a seat for the player reading it. */
function seatName(seat) {
  if (state && state.you === seat) return "You";
  return seat;
}

// ---- the board ----

/** The column buttons, each holding its cells from the top row down. */
const columns = [];
for (let c = 0; c < COLUMNS; c++) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "column";
  button.id = `col-${c}`;
  button.dataset.column = String(c);
  const cells = [];
  for (let r = ROWS - 1; r >= 0; r--) {
    const cell = document.createElement("span");
    cell.className = "cell";
    cell.dataset.row = String(r);
    button.append(cell);
    cells[r] = cell;
  }
  button.addEventListener("click", () => drop(c));
  el.board.append(button);
  columns.push({ button, cells });
}

function columnFull(c) {
  return !state || state.board[cellIndex(c, ROWS - 1)] !== 0;
}

/** Whether this player may drop a disc now, in any column. */
function myTurn() {
  return (
    state !== null &&
    state.status.type === "Playing" &&
    state.you !== null &&
    state.turn === state.you &&
    session.canSend &&
    !pending
  );
}

function drop(c) {
  if (watching || !myTurn() || columnFull(c)) return;
  if (session.send(encodeMsg({ type: "Drop", column: c })) !== null) {
    pending = true;
    render();
  }
}

// ---- rendering ----

function turnText() {
  if (!state) {
    if (session.state === "connected") return ["Sitting down…", ""];
    return [session.state === "stopped" ? "Not at a table" : "Connecting…", ""];
  }
  const s = state.status;
  const away = (seat) => {
    const i = SEATS.indexOf(seat);
    return state.seats[i].player !== null && !state.seats[i].connected;
  };
  switch (s.type) {
    case "Waiting":
      return ["Waiting for an opponent…", ""];
    case "Playing":
      if (state.turn === state.you) return ["Your turn", "you"];
      if (away(state.turn)) return [`${state.turn} is reconnecting…`, ""];
      return state.you ? [`${state.turn} is thinking…`, ""] : [`${state.turn}'s turn`, ""];
    case "Won":
      if (state.you === null) return [`${s.seat} wins!`, "win"];
      return s.seat === state.you ? ["You win!", "win"] : [`${s.seat} wins`, "lose"];
    case "Draw":
      return ["Draw: the board is full", ""];
    case "Forfeit":
      if (s.winner === state.you) return ["You win by forfeit. Waiting for a new opponent…", "win"];
      return [`${s.winner} wins by forfeit`, ""];
    default:
      return ["", ""];
  }
}

function renderBoard() {
  const won = state && state.status.type === "Won" ? new Set(state.status.cells) : new Set();
  const mine = myTurn();
  const last = moveLog.length > 0 ? moveLog[moveLog.length - 1] : null;
  const lastIndex = last && state && last.game === state.game ? cellIndex(last.column, last.row) : -1;
  for (let c = 0; c < COLUMNS; c++) {
    const { button, cells } = columns[c];
    let free = 0;
    for (let r = 0; r < ROWS; r++) {
      const i = cellIndex(c, r);
      const v = state ? state.board[i] : 0;
      if (v === 0) free += 1;
      cells[r].dataset.disc = String(v);
      cells[r].toggleAttribute("data-win", won.has(i));
      cells[r].toggleAttribute("data-last", i === lastIndex);
    }
    button.disabled = !mine || free === 0;
    button.setAttribute("aria-label", `Column ${c + 1}: ${free === 0 ? "full" : `${free} free`}`);
  }
}

function renderSeats() {
  const items = SEATS.map((seat, i) => {
    const s = state ? state.seats[i] : { player: null, connected: false, wins: 0, rematch: false };
    const li = document.createElement("li");
    li.className = "seat";
    li.dataset.seat = seat;
    if (state && state.turn === seat) li.dataset.turn = "";
    const disc = document.createElement("span");
    disc.className = `disc ${seat.toLowerCase()}`;
    disc.setAttribute("aria-hidden", "true");
    const who = document.createElement("span");
    who.className = "who";
    if (s.player === null) who.textContent = `${seat}: empty seat`;
    else who.textContent = state.you === seat ? `${seat}: you` : `${seat}: player #${s.player}`;
    if (s.player !== null && !s.connected) {
      const away = document.createElement("span");
      away.className = "away";
      away.textContent = "reconnecting…";
      who.append(away);
    } else if (s.rematch) {
      const asked = document.createElement("span");
      asked.className = "away";
      asked.textContent = "wants a rematch";
      who.append(asked);
    }
    const wins = document.createElement("span");
    wins.className = "wins";
    wins.textContent = `${s.wins} ${s.wins === 1 ? "win" : "wins"}`;
    li.append(disc, who, wins);
    return li;
  });
  el.seats.replaceChildren(...items);
}

function renderMoves() {
  const game = state ? state.game : currentGame;
  const rows = moveLog.filter((m) => m.game === game);
  if (el.moves.dataset.count === `${game}:${rows.length}`) return;
  el.moves.dataset.count = `${game}:${rows.length}`;
  el.moves.replaceChildren(
    ...rows.map((m) => {
      const li = document.createElement("li");
      li.value = m.number;
      li.textContent = `${seatName(m.seat)}: column ${m.column + 1}`;
      return li;
    }),
  );
}

function renderInvite() {
  const code = session.inviteCode;
  const seatFree = !state || state.seats.some((s) => s.player === null);
  el.invite.hidden = watching || !(code && seatFree);
  if (code) {
    el.inviteCode.textContent = code;
    el.inviteLink.value = `${location.origin}/four/?code=${code}`;
  }
}

function renderButtons() {
  const s = session.status;
  el.join.disabled = s.state !== "stopped";
  el.leave.disabled = s.state !== "connected";
  const finished = state && (state.status.type === "Won" || state.status.type === "Draw");
  const seated = state && state.you !== null;
  const both = state && state.seats.every((x) => x.player !== null);
  const me = seated ? state.seats[SEATS.indexOf(state.you)] : null;
  const them = seated ? state.seats[SEATS.indexOf(otherSeat(state.you))] : null;
  el.rematch.disabled = !(finished && seated && both && !me.rematch && session.canSend);
  el.rematch.textContent = me && me.rematch ? "Rematch asked" : them && them.rematch && finished ? "Accept rematch" : "Rematch";
}

function render() {
  const [text, tone] = turnText();
  if (el.turn.textContent !== text) el.turn.textContent = text;
  el.turn.dataset.tone = tone;
  renderBoard();
  renderSeats();
  renderMoves();
  renderInvite();
  renderButtons();
}

// ---- the session ----

bindBadge(session, el.badge);
session.on("status", render);
session.on("notice", showNotice);

session.on("welcome", (w) => {
  welcomes += 1;
  try {
    const board = decodeWelcome(w.game);
    if (board.columns !== COLUMNS || board.rows !== ROWS) {
      showNotice(`The server's board is ${board.columns}×${board.rows}; this page draws ${COLUMNS}×${ROWS}.`);
    }
  } catch (e) {
    showNotice(`This room is not four in a row (${w.roomType}): ${e.message}`);
  }
  if (!w.resumed) {
    // A new player: nothing seen before belongs to this session.
    state = null;
    moveLog = [];
    events = [];
    currentGame = null;
  } else {
    showNotice("Reconnected: your seat is still yours.");
  }
  pending = false;
  render();
});

session.on("state", (s) => {
  try {
    state = decodeState(s.data);
  } catch (e) {
    console.error(`undecodable four-in-a-row state at tick ${s.tick}: ${e.message}`);
    return;
  }
  if (currentGame === null) {
    // A page that resumed after a reload hears no NewGame for the game in
    // progress: the state names it, and moves replayed before this state
    // belong to it.
    currentGame = state.game;
    for (const m of moveLog) if (m.game === null) m.game = state.game;
  }
  pending = false;
  render();
});

session.on("event", (e) => {
  let ev;
  try {
    ev = decodeEvent(e.data);
  } catch (err) {
    console.error(`undecodable four-in-a-row event ${e.seq}: ${err.message}`);
    return;
  }
  events.push({ seq: e.seq, ...ev });
  const mine = (seat) => state && state.you === seat;
  switch (ev.type) {
    case "Seated":
      if (!mine(ev.seat) && state && state.you !== null) showNotice(`An opponent sat down at ${ev.seat}.`);
      break;
    case "NewGame":
      currentGame = ev.game;
      showNotice(`Game ${ev.game}: ${ev.first === (state && state.you) ? "you start" : `${ev.first} starts`}.`);
      break;
    case "Moved":
      moveLog.push({ game: currentGame, number: ev.number, seat: ev.seat, column: ev.column, row: ev.row });
      break;
    case "Won":
      showNotice(mine(ev.seat) ? "Four in a row: you win!" : `${ev.seat} made four in a row.`);
      break;
    case "Draw":
      showNotice("The board is full: a draw.");
      break;
    case "Forfeit":
      showNotice(mine(ev.winner) ? "Your opponent left: you win by forfeit." : `${ev.winner} wins by forfeit.`);
      break;
    case "Dropped":
      if (!mine(ev.seat)) showNotice(`${ev.seat} lost their connection: waiting for them to reconnect…`);
      break;
    case "Resumed":
      if (!mine(ev.seat)) showNotice(`${ev.seat} is back.`);
      break;
    case "Left":
      if (!mine(ev.seat)) showNotice(`${ev.seat} left the table.`);
      break;
    case "RematchAsked":
      if (!mine(ev.seat)) showNotice(`${ev.seat} wants a rematch.`);
      break;
    case "Rejected":
      pending = false;
      showNotice(`Not allowed: ${ev.reason}.`);
      break;
    default:
      break;
  }
  render();
});

// ---- buttons ----

el.rematch.addEventListener("click", () => {
  if (session.send(encodeMsg({ type: "Rematch" })) !== null) {
    el.rematch.disabled = true;
  }
});
el.leave.addEventListener("click", () => {
  session.leave();
  showNotice("You left the table.");
});
el.join.addEventListener("click", () => {
  showNotice("");
  session.connect();
});
el.copy.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(el.inviteLink.value);
    el.copy.textContent = "Copied";
  } catch {
    // No clipboard (an insecure origin, say): select it for a manual copy.
    el.inviteLink.select();
  }
});

// ---- debug hook ----

Object.defineProperty(window, "__four", {
  value: Object.freeze({
    get connection() {
      return session.state;
    },
    get state() {
      return state;
    },
    get seat() {
      return state ? state.you : null;
    },
    get board() {
      return state ? [...state.board] : null;
    },
    get turn() {
      return state ? state.turn : null;
    },
    get status() {
      return state ? state.status : null;
    },
    get moves() {
      const game = state ? state.game : currentGame;
      return moveLog.filter((m) => m.game === game).map(({ number, seat, column, row }) => ({ number, seat, column, row }));
    },
    get allMoves() {
      return moveLog.map((m) => ({ ...m }));
    },
    get events() {
      return events.map((e) => ({ ...e }));
    },
    get inviteCode() {
      return session.inviteCode;
    },
    get playerId() {
      return session.playerId;
    },
    get roomId() {
      return session.roomId;
    },
    get resumed() {
      return session.welcome ? session.welcome.resumed : null;
    },
    get welcomes() {
      return welcomes;
    },
    get lastEvent() {
      return session.lastEvent;
    },
    get attempt() {
      return session.status.attempt;
    },
    get reason() {
      return session.status.reason;
    },
    get code() {
      return session.status.code;
    },
    get log() {
      return session.log.map((s) => ({ ...s }));
    },
    get notice() {
      return lastNotice;
    },
  }),
  enumerable: false,
  writable: false,
  configurable: false,
});

render();
session.connect();
