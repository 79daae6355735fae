// session.js: the generic browser client of the game platform.
//
// What it is for: keeping one player's session with the server alive from
// a web page (or from Node in tests), whatever the game. It holds:
//
//   1. the envelope codec: bincode encoding and decoding of every message
//      of protocol v2 (protocol/src/msg.rs; field order is wire order),
//      tested against the Rust encoder's golden vectors
//      (protocol/golden/vectors.json), plus the bincode primitives
//      (BincodeWriter, BincodeReader) that each game's own codec.js is
//      written with;
//   2. Session: one player's session. It opens the WebSocket and says
//      Hello with the page's room request, resumes after an unclean drop
//      with the stored token and the last event it processed, backs off
//      exponentially with full jitter between attempts, sends app-level
//      Pings and treats a missing Pong as a dead connection, delivers the
//      game's reliable events once each and in order (acknowledging them
//      in coalesced EventAcks), numbers the game's messages, follows the
//      retry policy of every close code (Resume, Rejoin, Stop), follows a
//      cluster's redirects (protocol/PROTOCOL.md section 2.11: the join
//      starts at the entry URL the page gives, a Redirect sends it on to
//      another node with a seat ticket, and the node that says Welcome is
//      the session's home, where every resume goes), and waits while the
//      browser says it is offline;
//   3. helpers for pages: the connection badge (badgeText, bindBadge), the
//      query-string conventions every game page shares
//      (sessionOptionsFromQuery, roomRequestFromQuery), invite codes
//      (normalizeCode).
//
// What it is not for: any game. Game bytes go in and come out as
// Uint8Array; each game's codec.js turns them into values, and its page
// draws them. No DOM access either, except through the helpers of part 3
// and the browser defaults of part 2 (WebSocket, timers, sessionStorage,
// navigator.onLine, document.visibilityState), every one of which can be
// passed in, which is how the unit tests drive a Session with a fake socket
// and fake timers.
//
// No build step: this file is an ES module served as it is, at /session.js;
// a game's page at /NAME/ imports it as "../session.js".
//
// Numbers: u16 and u32 fields are JavaScript Numbers; u64 fields (Ping.t,
// Pong.t, Pong.serverTimeMs) are BigInts, so every value up to 2^64 - 1
// survives a round trip exactly (the encoder also takes a safe-integer
// Number). Resume tokens and game bytes are Uint8Arrays.
//
// Using it:
//
//   import { Session, bindBadge } from "../session.js";
//   const session = new Session({
//     url: "ws://127.0.0.1:8080/ws",
//     room: { type: "QuickJoin", roomType: "four", options: [] },
//     storageKey: "four:quick",
//   });
//   bindBadge(session, document.getElementById("badge"));
//   session.on("welcome", (w) => start(decodeMyWelcome(w.game)));
//   session.on("state", (s) => draw(decodeMyState(s.data)));
//   session.on("event", (e) => apply(decodeMyEvent(e.data)));
//   session.connect();
//   session.send(encodeMyMessage({ type: "Drop", column: 3 }));
//   session.leave();          // Leave: the player is removed for good
//
// Room requests (Session option `room`, the JS shape of RoomRequest):
//   { type: "QuickJoin", roomType, options: [[key, value], ...] }
//   { type: "Create", roomType, options, private: true | false }
//   { type: "JoinById", roomId }
//   { type: "JoinByCode", code }
//
// Events (session.on(name, fn) returns a function that unsubscribes):
//   "status"   every state change: a frozen copy of session.status (below)
//   "welcome"  a Welcome: the session is open, new or resumed. Its `game`
//              bytes are the game's welcome; `inviteCode` is set for a
//              private room; on a resume, the events after the last one
//              processed follow it
//   "state"    every State { tick, ack, data }: latest wins, so states may
//              be skipped (and some games send one only when it changed)
//   "event"    every Event { seq, data }, exactly once per session and in
//              order, across drops and resumes and page reloads (the last
//              one processed is stored with the token)
//   "pong"     { rtt, serverTimeMs } for each Pong; rtt in milliseconds
//   "close"    { code, reason, wasClean, policy } when a socket that had
//              been handed to the server closes (not for sockets the client
//              abandoned itself)
//   "redirect" { url, hop } when a node redirects the join to `url`; hop
//              counts the redirects of this join (1, 2, 3). The status
//              does not change: a redirect is part of connecting
//   "notice"   a sentence for the player ("the server forgot the session,
//              you joined as a new player")
//   "error"    { message } for socket errors and undecodable messages
//
// session.status: { state, attempt, retryInMs, retryCapMs, retryAt, reason,
// code, online }, where state is one of
//   "idle"         not started, or disposed
//   "connecting"   first attempt: opening the socket (and following any
//                  redirects), waiting for Welcome
//   "connected"    Welcome received, the session is live
//   "reconnecting" attempt `attempt` (1, 2, ...) after a drop: waiting
//                  `retryInMs` (at most `retryCapMs`) until `retryAt`, or
//                  with retryInMs null, trying now
//   "offline"      the browser reports no network; waiting for it
//   "stopped"      will not retry by itself; `reason` says why, `code` is
//                  the close code (null when there was none)

export const PROTOCOL_VERSION = 2;

/** Largest client message the server accepts (protocol/src/codec.rs). */
export const MAX_CLIENT_MSG_BYTES = 1024;

/** Largest server message this client accepts: more means a broken server. */
export const MAX_SERVER_MSG_BYTES = 1 << 20;

/**
 * The characters of invite codes (protocol/src/limits.rs): digits and
 * capitals without the ones people confuse (0/O, 1/I/L) and without U.
 */
export const CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ";

/** Characters in an invite code. */
export const CODE_LEN = 8;

/** Longest code field a room request may carry (a code with separators). */
export const MAX_CODE_FIELD_BYTES = 24;

/**
 * Redirects one join may follow (protocol/PROTOCOL.md section 2.11). A
 * cluster places a player with one redirect; a fourth in one join means
 * nodes that send the client round in circles, and it stops instead.
 */
export const MAX_REDIRECTS = 3;

/**
 * Resume attempts in a row that must fail to reach a home node other than
 * the entry (refused, failed, or not open within the connect timeout)
 * before the home is taken for gone with the session, and the client joins
 * anew at the entry (section 2.11). Three, not one, so that a single lost
 * connection attempt does not cost the player their seat; with the default
 * back-off, three refused attempts take at most 7 seconds (ceilings of 1,
 * 2 and 4 s).
 */
export const HOME_ATTEMPTS = 3;

/**
 * How long a home that closed with 1012 (a planned restart that keeps its
 * sessions) is waited for before it is given up, however many attempts
 * failed meanwhile: the server's default resume grace (--resume-grace).
 */
export const HOME_RESTART_PATIENCE_MS = 15_000;

/**
 * Every close code the server sends, with its retry policy, exactly as
 * `CloseCode::retry` in protocol/src/close.rs (the envelope test compares
 * this table with the golden file, which is generated from that code).
 */
export const CLOSE_CODES = Object.freeze({
  1000: { name: "normal", retry: "Stop" },
  1001: { name: "going_away", retry: "Resume" },
  1002: { name: "protocol_error", retry: "Stop" },
  1003: { name: "unsupported_data", retry: "Stop" },
  1007: { name: "invalid_payload", retry: "Stop" },
  1008: { name: "policy_violation", retry: "Stop" },
  1009: { name: "message_too_big", retry: "Stop" },
  1011: { name: "internal_error", retry: "Resume" },
  1012: { name: "service_restart", retry: "Resume" },
  4000: { name: "version_mismatch", retry: "Stop" },
  4001: { name: "room_full", retry: "Rejoin" },
  4002: { name: "invalid_resume_token", retry: "Rejoin" },
  4003: { name: "input_flood", retry: "Stop" },
  4004: { name: "too_slow", retry: "Resume" },
  4005: { name: "idle_timeout", retry: "Resume" },
  4006: { name: "server_full", retry: "Resume" },
  4007: { name: "session_taken_over", retry: "Stop" },
  4008: { name: "handshake_timeout", retry: "Resume" },
  4009: { name: "unknown_room_type", retry: "Stop" },
  4010: { name: "no_such_room", retry: "Stop" },
  4011: { name: "room_locked", retry: "Stop" },
  4012: { name: "room_at_capacity", retry: "Stop" },
  4013: { name: "room_private", retry: "Stop" },
  4014: { name: "refused_by_game", retry: "Stop" },
  4015: { name: "kicked", retry: "Stop" },
  4016: { name: "room_ended", retry: "Stop" },
  4017: { name: "event_backlog", retry: "Rejoin" },
  4018: { name: "too_many_attempts", retry: "Stop" },
  4019: { name: "redirected", retry: "Stop" },
  4020: { name: "directory_unavailable", retry: "Rejoin" },
  4021: { name: "invalid_ticket", retry: "Rejoin" },
});

/**
 * Close codes this client sends. Only 1000 means "leave"; every other code
 * keeps the player for the server's grace period, which is what a client
 * that means to resume wants (browsers allow 1000 and 3000-4999 only).
 */
export const CLIENT_CLOSE = Object.freeze({
  /** The player leaves for good. */
  LEAVE: 1000,
  /** No Pong within the timeout: the connection is presumed dead. */
  HEARTBEAT_TIMEOUT: 3000,
  /** No Welcome within the connect timeout. */
  CONNECT_TIMEOUT: 3001,
  /** The server sent something this client cannot decode. */
  UNDECODABLE: 3002,
  /** The page disposed of the session (keeps it for a reload). */
  DISPOSED: 3003,
  /**
   * An event arrived whose predecessor did not: the connection lost
   * something, so it is dropped and resumed, and the server replays every
   * event after the last one processed.
   */
  EVENT_GAP: 3004,
  /**
   * A Redirect arrived: this connection has done its part (the server
   * closes it with 4019 anyway), and the join goes on at the node named.
   */
  REDIRECTED: 3005,
});

/**
 * What to do after a close with `code`: "Resume", "Rejoin" or "Stop".
 * Codes the server never sends (1006: no close frame at all, 1005: no code,
 * this client's own 3000-range codes) mean the connection broke rather than
 * ended, and the server keeps the player for its grace period in exactly
 * that case, so they resume.
 */
export function retryPolicy(code) {
  const known = CLOSE_CODES[code];
  return known ? known.retry : "Resume";
}

/**
 * Close codes whose reason string is the game's own words (refused, kicked,
 * room ended): the player must see them as they are.
 */
const GAME_REASON_CODES = new Set([4014, 4015, 4016]);

/** A sentence for the player about a close, by code; `reason` is the server's text. */
export function describeClose(code, reason) {
  const base = {
    1000: "The session ended.",
    1001: "The server is going away.",
    1002: "The server refused this client's messages (protocol error).",
    1003: "The server refused this client's messages (text instead of binary).",
    1007: "The server could not decode a message from this client.",
    1008: "The server refused this connection (policy violation).",
    1009: "This client sent a message that is too big.",
    1011: "The server failed.",
    1012: "The server is restarting.",
    4000: "This page is out of date for the server (protocol version mismatch). Reload the page.",
    4001: "Every room is full.",
    4002: "The server no longer knows this session (it may have restarted).",
    4003: "Kicked: messages were sent too fast.",
    4004: "The connection was too slow to keep up.",
    4005: "The server heard nothing from this client for too long.",
    4006: "The server is full.",
    4007: "This player was taken over by another tab or window.",
    4008: "The handshake took too long.",
    4009: "This server does not host that game.",
    4010: "No open room has that id or invite code.",
    4011: "That room takes no new players right now.",
    4012: "That room is full.",
    4013: "That room is private: it can be joined with its invite code only.",
    4014: "The game did not let you in",
    4015: "The game removed you",
    4016: "The room has ended",
    4017: "This client fell too far behind on the game's events.",
    4018: "Too many invite-code attempts: wait a minute before trying again.",
    4019: "The server sent this client to another server without saying where.",
    4020: "The servers cannot reach their room directory right now.",
    4021: "The place another server reserved for this client was no longer valid.",
    [CLIENT_CLOSE.HEARTBEAT_TIMEOUT]: "No answer from the server: the connection seems dead.",
    [CLIENT_CLOSE.CONNECT_TIMEOUT]: "The server did not answer in time.",
    [CLIENT_CLOSE.UNDECODABLE]: "The server sent a message this client cannot read.",
    [CLIENT_CLOSE.EVENT_GAP]: "An event went missing on the way.",
    1006: "The connection was lost.",
    1005: "The connection was closed without a code.",
  }[code];
  if (GAME_REASON_CODES.has(code)) return reason ? `${base}: ${reason}` : `${base}.`;
  const text = base || `The connection closed (code ${code}).`;
  return reason ? `${text} (${reason})` : text;
}

// ---------------------------------------------------------------------------
// Bincode (standard configuration), for the envelope and for games' codecs
// ---------------------------------------------------------------------------

/** Bytes that are not exactly one valid value. */
export class DecodeError extends Error {
  constructor(message) {
    super(message);
    this.name = "DecodeError";
  }
}

const U64_MAX = (1n << 64n) - 1n;
const utf8Encoder = new TextEncoder();
// fatal: bytes that are not UTF-8 are an error, as they are in Rust.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Appends bincode values (standard configuration: varint integers, raw
 * u8/i8/bool, length-prefixed strings and sequences, 0/1 option tags,
 * enum variants as varint indices). Each method takes a field name for its
 * error messages, and refuses a value outside its type instead of writing
 * something the server would misread.
 */
export class BincodeWriter {
  constructor() {
    this.bytes = [];
  }

  u8(value, field = "u8") {
    if (!Number.isInteger(value) || value < 0 || value > 255) {
      throw new RangeError(`${field}: ${value} is outside u8`);
    }
    this.bytes.push(value);
  }

  i8(value, field = "i8") {
    if (!Number.isInteger(value) || value < -128 || value > 127) {
      throw new RangeError(`${field}: ${value} is outside i8`);
    }
    this.bytes.push(value & 0xff);
  }

  bool(value, field = "bool") {
    if (typeof value !== "boolean") throw new TypeError(`${field}: expected a boolean`);
    this.bytes.push(value ? 1 : 0);
  }

  /** A varint of a field of `bits` (16, 32 or 64) bits, shortest form. */
  varint(value, bits, field = `u${bits}`) {
    let v;
    if (typeof value === "bigint") {
      v = value;
    } else if (Number.isSafeInteger(value)) {
      v = BigInt(value);
    } else {
      throw new RangeError(`${field}: ${value} is not an integer`);
    }
    const max = bits === 64 ? U64_MAX : (1n << BigInt(bits)) - 1n;
    if (v < 0n || v > max) throw new RangeError(`${field}: ${value} is outside u${bits}`);
    if (v < 251n) {
      this.bytes.push(Number(v));
      return;
    }
    let marker, width;
    if (v <= 0xffffn) [marker, width] = [251, 2];
    else if (v <= 0xffffffffn) [marker, width] = [252, 4];
    else [marker, width] = [253, 8];
    this.bytes.push(marker);
    for (let i = 0; i < width; i++) {
      this.bytes.push(Number(v & 0xffn));
      v >>= 8n;
    }
  }

  u16(value, field = "u16") {
    this.varint(value, 16, field);
  }

  u32(value, field = "u32") {
    this.varint(value, 32, field);
  }

  u64(value, field = "u64") {
    this.varint(value, 64, field);
  }

  /** A sequence's or string's length (a usize: a u64 varint). */
  len(n, field = "length") {
    this.varint(n, 64, field);
  }

  /** An enum variant's index. */
  variant(index, field = "variant") {
    this.varint(index, 32, field);
  }

  str(value, field = "string") {
    if (typeof value !== "string") throw new TypeError(`${field}: expected a string`);
    const bytes = utf8Encoder.encode(value);
    this.len(bytes.length, field);
    for (const b of bytes) this.bytes.push(b);
  }

  /** A Vec<u8>: its length, then the bytes. */
  byteVec(value, field = "bytes") {
    if (!(value instanceof Uint8Array)) throw new TypeError(`${field}: expected a Uint8Array`);
    this.len(value.length, field);
    for (const b of value) this.bytes.push(b);
  }

  /** A fixed-size byte array ([u8; N]): the bytes alone. */
  fixedBytes(value, n, field = "bytes") {
    if (!(value instanceof Uint8Array) || value.length !== n) {
      throw new TypeError(`${field}: expected a Uint8Array of ${n} bytes`);
    }
    for (const b of value) this.bytes.push(b);
  }

  /** An Option: 0 for null or undefined, else 1 and `write(value)`. */
  option(value, write) {
    if (value === null || value === undefined) {
      this.bytes.push(0);
    } else {
      this.bytes.push(1);
      write(value);
    }
  }

  /** A Vec<T>: its length, then `write(item)` for each. */
  seq(items, write, field = "sequence") {
    if (!Array.isArray(items) && !ArrayBuffer.isView(items)) throw new TypeError(`${field}: expected an array`);
    this.len(items.length, field);
    for (const item of items) write(item);
  }

  finish() {
    return Uint8Array.from(this.bytes);
  }
}

/**
 * Reads bincode values from a Uint8Array; every read checks the bounds,
 * and a length is checked against the bytes left before anything is
 * allocated (a 12-byte message can claim 2^56 items).
 */
export class BincodeReader {
  constructor(bytes) {
    this.b = asBytes(bytes);
    this.i = 0;
  }

  remaining() {
    return this.b.length - this.i;
  }

  need(n) {
    if (n > this.remaining()) throw new DecodeError("the message ends too early");
  }

  u8() {
    this.need(1);
    return this.b[this.i++];
  }

  i8() {
    return (this.u8() << 24) >> 24;
  }

  bool() {
    const b = this.u8();
    if (b > 1) throw new DecodeError(`invalid bool byte ${b}`);
    return b === 1;
  }

  /** Little-endian unsigned integer of `width` bytes, as a BigInt. */
  le(width) {
    this.need(width);
    let v = 0n;
    for (let k = width - 1; k >= 0; k--) v = (v << 8n) | BigInt(this.b[this.i + k]);
    this.i += width;
    return v;
  }

  /**
   * A varint in a field of `bits` bits. A marker wider than the field, and
   * the u128 marker FE or the invalid FF, are errors. Longer-than-needed
   * forms are accepted, as the Rust decoder accepts them. Returns a Number
   * for 16 and 32 bits and a BigInt for 64.
   */
  varint(bits) {
    const m = this.u8();
    let v;
    if (m < 251) v = BigInt(m);
    else if (m === 251) v = this.le(2);
    else if (m === 252 && bits >= 32) v = this.le(4);
    else if (m === 253 && bits === 64) v = this.le(8);
    else throw new DecodeError(`varint marker 0x${m.toString(16)} is invalid in a u${bits}`);
    return bits === 64 ? v : Number(v);
  }

  u16() {
    return this.varint(16);
  }

  u32() {
    return this.varint(32);
  }

  u64() {
    return this.varint(64);
  }

  /**
   * A length prefix, checked against the bytes left: each item takes at
   * least `minItemBytes`, so a longer claim cannot be true.
   */
  len(minItemBytes = 1) {
    const n = this.varint(64);
    if (n * BigInt(minItemBytes) > BigInt(this.remaining())) {
      throw new DecodeError(`a length of ${n} exceeds the bytes left (${this.remaining()})`);
    }
    return Number(n);
  }

  /** The variant index of an enum with `count` variants. */
  variant(count, what = "enum") {
    const v = this.varint(32);
    if (v >= count) throw new DecodeError(`unknown ${what} variant ${v}`);
    return v;
  }

  str() {
    const n = this.len(1);
    const bytes = this.b.subarray(this.i, this.i + n);
    this.i += n;
    try {
      return utf8Decoder.decode(bytes);
    } catch {
      throw new DecodeError("a string that is not UTF-8");
    }
  }

  /** A Vec<u8> as a new Uint8Array. */
  byteVec() {
    const n = this.len(1);
    const out = this.b.slice(this.i, this.i + n);
    this.i += n;
    return out;
  }

  /** A fixed-size byte array ([u8; N]). */
  fixedBytes(n) {
    this.need(n);
    const out = this.b.slice(this.i, this.i + n);
    this.i += n;
    return out;
  }

  /** An Option: null, or `read()`. */
  option(read) {
    const tag = this.u8();
    if (tag > 1) throw new DecodeError(`invalid Option tag ${tag}`);
    return tag === 1 ? read() : null;
  }

  /** A Vec<T> of items at least `minItemBytes` long each. */
  seq(read, minItemBytes = 1) {
    const n = this.len(minItemBytes);
    const out = new Array(n);
    for (let k = 0; k < n; k++) out[k] = read();
    return out;
  }

  /** Fails unless every byte was used: trailing bytes are an error. */
  end() {
    if (this.i !== this.b.length) {
      throw new DecodeError(`${this.b.length - this.i} trailing bytes after the message`);
    }
  }
}

/** The bytes of an ArrayBuffer, typed array or DataView; anything else is a DecodeError. */
export function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new DecodeError("expected binary data (ArrayBuffer or Uint8Array)");
}

/**
 * Decodes exactly one value from `data` (at most `limit` bytes) with
 * `read(reader)`, refusing trailing bytes: what every game codec's
 * decode functions do.
 */
export function decodeWith(data, limit, read) {
  const bytes = asBytes(data);
  if (bytes.length > limit) throw new DecodeError(`message of ${bytes.length} bytes exceeds ${limit}`);
  const r = new BincodeReader(bytes);
  const value = read(r);
  r.end();
  return value;
}

/** Encodes one value with `write(writer)`. */
export function encodeWith(write) {
  const w = new BincodeWriter();
  write(w);
  return w.finish();
}

// ---------------------------------------------------------------------------
// The envelope
// ---------------------------------------------------------------------------

const ROOM_REQUESTS = ["QuickJoin", "Create", "JoinById", "JoinByCode", "Reserved"];

/**
 * The room requests a page may ask a Session for. `Reserved` is not one:
 * its ticket comes from a server's Redirect and is good for one join, so
 * only the Session itself sends it.
 */
const PAGE_ROOM_REQUESTS = ["QuickJoin", "Create", "JoinById", "JoinByCode"];

function writeOptions(w, options, field) {
  if (!Array.isArray(options)) throw new TypeError(`${field}: expected [key, value] pairs`);
  w.seq(options, (pair) => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError(`${field}: expected [key, value] pairs`);
    w.str(pair[0], `${field} key`);
    w.str(pair[1], `${field} value`);
  }, field);
}

function writeRoom(w, room) {
  const index = ROOM_REQUESTS.indexOf(room && room.type);
  if (index < 0) throw new TypeError(`unknown room request type ${room && room.type}`);
  w.variant(index);
  switch (room.type) {
    case "QuickJoin":
      w.str(room.roomType, "QuickJoin.roomType");
      writeOptions(w, room.options ?? [], "QuickJoin.options");
      break;
    case "Create":
      w.str(room.roomType, "Create.roomType");
      writeOptions(w, room.options ?? [], "Create.options");
      w.bool(room.private, "Create.private");
      break;
    case "JoinById":
      w.u32(room.roomId, "JoinById.roomId");
      break;
    case "JoinByCode":
      w.str(room.code, "JoinByCode.code");
      break;
    default:
      w.fixedBytes(room.ticket, 16, "Reserved.ticket");
  }
}

function readRoom(r) {
  const type = ROOM_REQUESTS[r.variant(ROOM_REQUESTS.length, "RoomRequest")];
  // An option pair is at least two length bytes.
  const options = () => r.seq(() => [r.str(), r.str()], 2);
  switch (type) {
    case "QuickJoin":
      return { type, roomType: r.str(), options: options() };
    case "Create":
      return { type, roomType: r.str(), options: options(), private: r.bool() };
    case "JoinById":
      return { type, roomId: r.u32() };
    case "JoinByCode":
      return { type, code: r.str() };
    default:
      return { type, ticket: r.fixedBytes(16) };
  }
}

/**
 * Encodes a client message:
 *   { type: "Hello", version, resume: null | { token: Uint8Array(16), lastEvent }, room }
 *     (room: a room request as Session takes it, or
 *     { type: "Reserved", ticket: Uint8Array(16) } after a Redirect)
 *   { type: "Game", seq, data: Uint8Array }
 *   { type: "Ping", t }                       t a BigInt or safe integer
 *   { type: "EventAck", upto }
 *   { type: "Leave" }
 */
export function encodeClient(msg) {
  const w = new BincodeWriter();
  switch (msg.type) {
    case "Hello":
      w.variant(0);
      w.u16(msg.version, "Hello.version");
      w.option(msg.resume, (resume) => {
        w.fixedBytes(resume.token, 16, "Hello.resume.token");
        w.u32(resume.lastEvent, "Hello.resume.lastEvent");
      });
      writeRoom(w, msg.room);
      break;
    case "Game":
      w.variant(1);
      w.u32(msg.seq, "Game.seq");
      w.byteVec(msg.data, "Game.data");
      break;
    case "Ping":
      w.variant(2);
      w.u64(msg.t, "Ping.t");
      break;
    case "EventAck":
      w.variant(3);
      w.u32(msg.upto, "EventAck.upto");
      break;
    case "Leave":
      w.variant(4);
      break;
    default:
      throw new TypeError(`unknown client message type ${msg.type}`);
  }
  return w.finish();
}

/** Decodes one client message (the server's side; used by tests and tools). */
export function decodeClient(data) {
  return decodeWith(data, MAX_CLIENT_MSG_BYTES, (r) => {
    switch (r.variant(5, "ClientMsg")) {
      case 0: {
        const version = r.u16();
        const resume = r.option(() => ({ token: r.fixedBytes(16), lastEvent: r.u32() }));
        return { type: "Hello", version, resume, room: readRoom(r) };
      }
      case 1:
        return { type: "Game", seq: r.u32(), data: r.byteVec() };
      case 2:
        return { type: "Ping", t: r.u64() };
      case 3:
        return { type: "EventAck", upto: r.u32() };
      default:
        return { type: "Leave" };
    }
  });
}

/**
 * Encodes a server message (the server's side; the tests' fake server uses
 * it). Shapes are those decodeServer returns.
 */
export function encodeServer(msg) {
  const w = new BincodeWriter();
  switch (msg.type) {
    case "Welcome":
      w.variant(0);
      w.u16(msg.version, "Welcome.version");
      w.u32(msg.playerId, "Welcome.playerId");
      w.u32(msg.roomId, "Welcome.roomId");
      w.str(msg.roomType, "Welcome.roomType");
      w.option(msg.inviteCode, (code) => w.str(code, "Welcome.inviteCode"));
      w.fixedBytes(msg.resumeToken, 16, "Welcome.resumeToken");
      w.bool(msg.resumed, "Welcome.resumed");
      w.u16(msg.tickHz, "Welcome.tickHz");
      w.byteVec(msg.game, "Welcome.game");
      break;
    case "State":
      w.variant(1);
      w.u32(msg.tick, "State.tick");
      w.u32(msg.ack, "State.ack");
      w.byteVec(msg.data, "State.data");
      break;
    case "Event":
      w.variant(2);
      w.u32(msg.seq, "Event.seq");
      w.byteVec(msg.data, "Event.data");
      break;
    case "Pong":
      w.variant(3);
      w.u64(msg.t, "Pong.t");
      w.u64(msg.serverTimeMs, "Pong.serverTimeMs");
      break;
    case "Redirect":
      w.variant(4);
      w.str(msg.url, "Redirect.url");
      w.fixedBytes(msg.ticket, 16, "Redirect.ticket");
      break;
    default:
      throw new TypeError(`unknown server message type ${msg.type}`);
  }
  return w.finish();
}

/**
 * Decodes one server message (untrusted input) from an ArrayBuffer or
 * Uint8Array, or throws DecodeError:
 *   { type: "Welcome", version, playerId, roomId, roomType, inviteCode: string | null,
 *     resumeToken: Uint8Array(16), resumed, tickHz, game: Uint8Array }
 *   { type: "State", tick, ack, data: Uint8Array }
 *   { type: "Event", seq, data: Uint8Array }
 *   { type: "Pong", t: BigInt, serverTimeMs: BigInt }
 *   { type: "Redirect", url, ticket: Uint8Array(16) }
 */
export function decodeServer(data) {
  return decodeWith(data, MAX_SERVER_MSG_BYTES, (r) => {
    switch (r.variant(5, "ServerMsg")) {
      case 0:
        return {
          type: "Welcome",
          version: r.u16(),
          playerId: r.u32(),
          roomId: r.u32(),
          roomType: r.str(),
          inviteCode: r.option(() => r.str()),
          resumeToken: r.fixedBytes(16),
          resumed: r.bool(),
          tickHz: r.u16(),
          game: r.byteVec(),
        };
      case 1:
        return { type: "State", tick: r.u32(), ack: r.u32(), data: r.byteVec() };
      case 2:
        return { type: "Event", seq: r.u32(), data: r.byteVec() };
      case 3:
        return { type: "Pong", t: r.u64(), serverTimeMs: r.u64() };
      default:
        return { type: "Redirect", url: r.str(), ticket: r.fixedBytes(16) };
    }
  });
}

/** Bytes as lower-case hex (tokens in storage; tests). */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The inverse of toHex; null for anything that is not an even run of hex digits. */
export function fromHex(text) {
  if (typeof text !== "string" || !/^(?:[0-9a-f]{2})*$/.test(text)) return null;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A resume token from its 32 hex digits, or null. */
export function tokenFromHex(text) {
  const bytes = fromHex(text);
  return bytes && bytes.length === 16 ? bytes : null;
}

/**
 * The canonical form of an invite code as a person may type it (any case,
 * with spaces or dashes), or null if it cannot be a code; the same rule as
 * `normalize_code` in protocol/src/limits.rs.
 */
export function normalizeCode(typed) {
  if (typeof typed !== "string") return null;
  const code = typed.replace(/[ -]/g, "").toUpperCase();
  if (code.length !== CODE_LEN) return null;
  for (const c of code) if (!CODE_ALPHABET.includes(c)) return null;
  return code;
}

/**
 * The WebSocket URL a Redirect or a stored home names, or null if it is
 * none: ws: and wss: as they are, http: and https: as ws: and wss: (what a
 * server's --public-url may say), anything else refused, so that a broken
 * server cannot send the page somewhere that is not a game server.
 */
export function webSocketUrl(text) {
  if (typeof text !== "string") return null;
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") return null;
  if (url.hash !== "" || url.username !== "" || url.password !== "") return null;
  return url.href;
}

/** Whether two WebSocket URLs name the same endpoint, as a browser reads them. */
function sameUrl(a, b) {
  return webSocketUrl(a) === webSocketUrl(b);
}

// ---------------------------------------------------------------------------
// Back-off
// ---------------------------------------------------------------------------

/**
 * The ceiling of the delay before retry number `attempt` (1, 2, ...):
 * `baseMs` doubled per earlier attempt, at most `maxMs`.
 */
export function backoffCap(attempt, baseMs, maxMs) {
  // Past 2^30 the product is beyond any sane maximum anyway.
  const doublings = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(maxMs, baseMs * 2 ** doublings);
}

/**
 * "Full jitter" (AWS Architecture Blog, "Exponential Backoff and Jitter"):
 * a uniformly random delay between 0 and the ceiling, so that clients
 * dropped together by one server restart do not come back together.
 */
export function backoffDelay(attempt, baseMs, maxMs, random) {
  return random() * backoffCap(attempt, baseMs, maxMs);
}

// ---------------------------------------------------------------------------
// The session
// ---------------------------------------------------------------------------

/** Defaults of Session's options, each with its reason. */
export const DEFAULTS = Object.freeze({
  /** First retry waits up to 1 s: short enough that a blip goes unnoticed. */
  backoffBaseMs: 1000,
  /** Retries never wait more than 30 s, so a returning server is found soon. */
  backoffMaxMs: 30000,
  /** A Ping every 3 s: well under the server's 10/s limit, cheap on the wire. */
  pingIntervalMs: 3000,
  /**
   * A Ping unanswered for 5 s means the connection is dead. The server
   * answers at once, so only a dead or badly stalled path takes that long.
   */
  pongTimeoutMs: 5000,
  /** Opening the socket and getting Welcome must take less than 10 s. */
  connectTimeoutMs: 10000,
  /**
   * Events are acknowledged at most every 100 ms (one EventAck covers every
   * event before it): a tenth of the server's limit of 30 a second, and
   * soon enough that the server's backlog of 1,024 unacknowledged events is
   * never near.
   */
  ackDelayMs: 100,
  /**
   * ...but at once when this many are unacknowledged, so that even a burst
   * (a resume replaying hundreds) cannot push the server's backlog bound.
   */
  ackEagerEvents: 256,
  /** Storage key prefix of the session (token, last event); the URL is appended. */
  storageKey: "session",
});

/** A key-value store in memory, when no Web Storage is available. */
export function memoryStorage() {
  const map = new Map();
  return {
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => void map.set(k, String(v)),
    removeItem: (k) => void map.delete(k),
  };
}

function defaultStorage() {
  try {
    // Reading sessionStorage throws where storage is disabled.
    if (globalThis.sessionStorage) return globalThis.sessionStorage;
  } catch {
    // Fall through to memory: the session still works, a reload will not resume.
  }
  return memoryStorage();
}

/** navigator.onLine and the window's online/offline events. */
export function browserNetwork() {
  const nav = globalThis.navigator;
  const win = globalThis.window;
  return {
    isOnline: () => (nav && typeof nav.onLine === "boolean" ? nav.onLine : true),
    subscribe(onChange) {
      if (!win || !win.addEventListener) return () => {};
      win.addEventListener("online", onChange);
      win.addEventListener("offline", onChange);
      return () => {
        win.removeEventListener("online", onChange);
        win.removeEventListener("offline", onChange);
      };
    },
  };
}

/** document.visibilityState and its change event. */
export function browserVisibility() {
  const doc = globalThis.document;
  return {
    isVisible: () => !doc || doc.visibilityState !== "hidden",
    subscribe(onChange) {
      if (!doc || !doc.addEventListener) return () => {};
      doc.addEventListener("visibilitychange", onChange);
      return () => doc.removeEventListener("visibilitychange", onChange);
    },
  };
}

/** Bound on session.log, the recent history kept for debugging and tests. */
const LOG_LIMIT = 200;

/**
 * One player's session with the server. See the top of this file for the
 * events and states. Options (all optional but `url` and `room`; defaults
 * in DEFAULTS):
 *
 *   url                         ws:// or wss:// URL of the server's /ws:
 *                               the entry, where every join as a new
 *                               player starts (a cluster's node may
 *                               redirect it; resumes go to the home, the
 *                               node that said Welcome)
 *   room                        the room request of a new player: sent in
 *                               every Hello (the server ignores it when
 *                               the Hello resumes), so a Rejoin goes where
 *                               the page asked to go
 *   storageKey                  names this page's session in storage; a
 *                               page per game (and per way of joining)
 *                               keeps sessions of different games apart
 *   backoffBaseMs, backoffMaxMs, pingIntervalMs, pongTimeoutMs,
 *   connectTimeoutMs, ackDelayMs, ackEagerEvents
 *   WebSocket                   the WebSocket class (default: the global)
 *   setTimeout, clearTimeout    timers (default: the globals, looked up at
 *                               each call so that fake timers apply)
 *   now                         a monotonic clock in ms (default performance.now)
 *   random                      a source in [0, 1) (default Math.random)
 *   storage                     getItem/setItem/removeItem (default sessionStorage)
 *   network                     { isOnline(), subscribe(fn) -> unsubscribe }
 *   visibility                  { isVisible(), subscribe(fn) -> unsubscribe }
 */
export class Session {
  constructor(options) {
    if (!options || typeof options.url !== "string") throw new TypeError("Session needs a url");
    if (!options.room || !PAGE_ROOM_REQUESTS.includes(options.room.type)) {
      throw new TypeError("Session needs a room request (QuickJoin, Create, JoinById or JoinByCode)");
    }
    // Fail now, not at the first Hello, on a request that cannot be encoded.
    encodeClient({ type: "Hello", version: PROTOCOL_VERSION, resume: null, room: options.room });
    this.url = options.url;
    this.room = options.room;
    const o = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS)) {
      if (options[key] !== undefined) o[key] = options[key];
    }
    this.options = Object.freeze(o);
    this._WebSocket = options.WebSocket || globalThis.WebSocket;
    this._setTimeout = options.setTimeout || ((fn, ms) => globalThis.setTimeout(fn, ms));
    this._clearTimeout = options.clearTimeout || ((id) => globalThis.clearTimeout(id));
    this._now = options.now || (() => globalThis.performance.now());
    this._random = options.random || Math.random;
    this._storage = options.storage || defaultStorage();
    this._network = options.network || browserNetwork();
    this._visibility = options.visibility || browserVisibility();
    // Kept per server URL too, so that a page pointed at another server
    // never hands that server this one's token.
    this._storageKey = `${o.storageKey}:${this.url}`;

    this._handlers = new Map();
    this._timers = { retry: null, connect: null, ping: null, pong: null, ack: null };
    this._ws = null;
    this._status = Object.freeze({
      state: "idle",
      attempt: 0,
      retryInMs: null,
      retryCapMs: null,
      retryAt: null,
      reason: null,
      code: null,
      online: this._network.isOnline(),
    });
    /** Failed attempts since the last Welcome; 0 while connected. */
    this._attempt = 0;
    /** Why the next Welcome is a new player, to tell the player when it comes. */
    this._rejoinReason = null;
    /**
     * The current socket's attempt: { ws, url, kind, opened }, kind being
     * "join" (a new player at the entry), "reserved" (with a Redirect's
     * ticket) or "resume" (at the home); null between sockets.
     */
    this._attemptInfo = null;
    /** The Redirect to follow next, { url, ticket }, or null. */
    this._redirect = null;
    /** Redirects followed in the current join. */
    this._redirects = 0;
    /** Resume attempts in a row that never reached a home other than the entry. */
    this._homeFailures = 0;
    /** When the home closed with 1012 (restarting with its sessions), or null. */
    this._homeRestartingAt = null;
    /** The live connection's session: { ws, seqKnown, acked }; null between them. */
    this._session = null;
    /**
     * The stored session, { token: Uint8Array, lastEvent, home }, or null,
     * home being the URL of the node that said Welcome. Kept here as well
     * as in storage, so a drop resumes even where storage refuses writes
     * (a reload then cannot).
     */
    this._saved = undefined;
    this.welcome = null;
    this.lastState = null;
    this.rtt = null;
    this.lastClose = null;
    this.log = [];
    /** The seq of the last game message sent. */
    this._seq = 0;
    this._unsubscribe = [
      this._network.subscribe(() => this._onNetworkChange()),
      this._visibility.subscribe(() => this._onVisibilityChange()),
    ];
  }

  // ---- public surface ----

  /** The current status; a frozen object, replaced on every change. */
  get status() {
    return this._status;
  }

  get state() {
    return this._status.state;
  }

  /** The player id of the current or most recent session. */
  get playerId() {
    return this.welcome ? this.welcome.playerId : null;
  }

  /** The room of the current or most recent session. */
  get roomId() {
    return this.welcome ? this.welcome.roomId : null;
  }

  /** The entry: the URL every join as a new player starts at. */
  get entryUrl() {
    return this.url;
  }

  /**
   * The home of the stored session (the URL of the node that welcomed it,
   * where resumes go), or null when there is none.
   */
  get homeUrl() {
    const saved = this._load();
    return saved ? saved.home : null;
  }

  /** The invite code of the current room (private rooms), or null. */
  get inviteCode() {
    return this.welcome ? this.welcome.inviteCode : null;
  }

  /** The seq of the last game message sent (0 before the first). */
  get gameSeq() {
    return this._seq;
  }

  /** The seq of the last event processed in this session (0 for none). */
  get lastEvent() {
    const saved = this._load();
    return saved ? saved.lastEvent : 0;
  }

  /** The stored resume token, or null. */
  get token() {
    const saved = this._load();
    return saved ? saved.token : null;
  }

  /**
   * Whether send() would send now: connected, and for a resumed session,
   * its first State has said where the server's numbering stands.
   */
  get canSend() {
    return this.state === "connected" && this._session !== null && this._session.seqKnown;
  }

  on(type, handler) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(handler);
    return () => this._handlers.get(type).delete(handler);
  }

  /**
   * Starts (or restarts after "stopped") the session: resumes with the
   * stored token if there is one, else joins as a new player with the room
   * request. While reconnecting or offline it tries at once instead of
   * waiting.
   */
  connect() {
    const state = this.state;
    if (state === "connected" || state === "connecting") return;
    if (state === "reconnecting" || state === "offline") {
      this.retryNow();
      return;
    }
    this._attempt = 0;
    this._redirect = null;
    this._homeFailures = 0;
    if (!this._network.isOnline()) {
      this._setStatus("offline", {});
      return;
    }
    this._open();
  }

  /** While waiting to reconnect (or offline), tries now. */
  retryNow() {
    if (this.state !== "reconnecting" && this.state !== "offline") return;
    if (this._ws) return; // an attempt is already under way
    this._clear("retry");
    this._open();
  }

  /**
   * Sends one game message (the game's bytes) with the next sequence
   * number, and returns that number; returns null, sending nothing, when
   * there is no session to send on (see canSend): a game message is about
   * the present, and the page decides what to do after a reconnect.
   */
  send(data) {
    if (!(data instanceof Uint8Array)) throw new TypeError("send: expected the game's bytes as a Uint8Array");
    if (!this.canSend) return null;
    // seq is a u32; a session would need 800 days of messages at 60/s to wrap.
    const seq = this._seq + 1;
    if (!this._sendMsg(this._session.ws, { type: "Game", seq, data })) return null;
    this._seq = seq;
    return seq;
  }

  /**
   * Leaves for good: says Leave and closes with 1000, so the server removes
   * the player at once, and forgets the token. connect() afterwards joins
   * a new player.
   */
  leave() {
    this._forget();
    this._clearAll();
    this._redirect = null;
    this._attemptInfo = null;
    const ws = this._ws;
    if (ws) {
      this._ws = null;
      this._detach(ws);
      if (this._session) this._sendMsg(ws, { type: "Leave" });
      try {
        ws.close(CLIENT_CLOSE.LEAVE, "leave");
      } catch {
        // A socket that cannot even be closed is gone already.
      }
    }
    this._session = null;
    this._setStatus("stopped", { reason: "You left the game.", code: CLIENT_CLOSE.LEAVE });
  }

  /**
   * Stops everything without leaving: the socket is closed with a 3000-range
   * code, so the server keeps the player for its grace period and a reload
   * of the page can resume it.
   */
  dispose() {
    this._clearAll();
    this._redirect = null;
    this._attemptInfo = null;
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      this._detach(ws);
      try {
        ws.close(CLIENT_CLOSE.DISPOSED, "disposed");
      } catch {
        // Nothing left to release.
      }
    }
    this._session = null;
    for (const off of this._unsubscribe) off();
    this._unsubscribe = [];
    this._setStatus("idle", {});
  }

  // ---- internals ----

  _emit(type, value) {
    const set = this._handlers.get(type);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        handler(value);
      } catch (e) {
        // One broken handler must not break the session or other handlers.
        globalThis.console?.error?.(e);
      }
    }
  }

  _setStatus(state, extra) {
    this._status = Object.freeze({
      state,
      attempt: this._attempt,
      retryInMs: null,
      retryCapMs: null,
      retryAt: null,
      reason: null,
      code: null,
      online: this._network.isOnline(),
      ...extra,
    });
    this.log.push(this._status);
    if (this.log.length > LOG_LIMIT) this.log.splice(0, this.log.length - LOG_LIMIT);
    this._emit("status", this._status);
  }

  _clear(name) {
    if (this._timers[name] !== null) {
      this._clearTimeout(this._timers[name]);
      this._timers[name] = null;
    }
  }

  _clearAll() {
    for (const name of Object.keys(this._timers)) this._clear(name);
  }

  /** The stored session, read from storage once and then kept. */
  _load() {
    if (this._saved === undefined) {
      this._saved = null;
      try {
        const parsed = JSON.parse(this._storage.getItem(this._storageKey));
        const token = tokenFromHex(parsed && parsed.token);
        const lastEvent = parsed && parsed.lastEvent;
        // A session stored without a home was welcomed at the entry.
        const home = parsed && parsed.home !== undefined ? webSocketUrl(parsed.home) : this.url;
        if (token && home && Number.isInteger(lastEvent) && lastEvent >= 0 && lastEvent <= 0xffffffff) {
          this._saved = { token, lastEvent, home };
        }
      } catch {
        // Nothing stored, storage disabled, or not ours: a new player.
      }
    }
    return this._saved;
  }

  /**
   * Remembers the token, the last event processed and the home, here and
   * in storage.
   */
  _save(token, lastEvent, home) {
    this._saved = { token, lastEvent, home };
    try {
      this._storage.setItem(this._storageKey, JSON.stringify({ token: toHex(token), lastEvent, home }));
    } catch {
      // Storage full or disabled: this page cannot resume after a reload,
      // but it still resumes after a drop from what it holds in memory.
    }
  }

  /** Forgets the session: token, last event and home. */
  _forget() {
    this._saved = null;
    this._homeFailures = 0;
    this._homeRestartingAt = null;
    try {
      this._storage.removeItem(this._storageKey);
    } catch {
      // Nothing stored, nothing to forget.
    }
  }

  _detach(ws) {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onerror = null;
    ws.onclose = null;
  }

  /**
   * Opens a socket: the first attempt, a retry, or (`hop`) the next step
   * of a join that was redirected, which keeps the status as it is. Where
   * it goes: the pending Redirect's node with its ticket, else the home
   * with the stored token, else the entry with the page's room request.
   */
  _open(hop = false) {
    this._clear("retry");
    if (!hop) {
      if (this._attempt > 0) this._setStatus("reconnecting", { attempt: this._attempt });
      else this._setStatus("connecting", {});
    }
    const redirect = this._redirect;
    const saved = this._load();
    let url, kind;
    if (redirect) {
      [url, kind] = [redirect.url, "reserved"];
    } else if (saved) {
      [url, kind] = [saved.home, "resume"];
    } else {
      // A join as a new player starts here, with no redirect behind it.
      [url, kind] = [this.url, "join"];
      this._redirects = 0;
    }
    let ws;
    try {
      ws = new this._WebSocket(url);
    } catch (e) {
      // Only a malformed URL throws here (the entry is the page's; a
      // redirect's or a home's was checked); retrying cannot fix it.
      this._redirect = null;
      this._setStatus("stopped", { reason: `Cannot connect to ${url}: ${e.message}`, code: null });
      return;
    }
    this._ws = ws;
    this._session = null;
    const attempt = { ws, url, kind, opened: false };
    this._attemptInfo = attempt;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      if (ws !== this._ws) return;
      attempt.opened = true;
      let hello;
      if (kind === "reserved") {
        hello = { resume: null, room: { type: "Reserved", ticket: redirect.ticket } };
      } else {
        const now = this._load();
        hello = { resume: now ? { token: now.token, lastEvent: now.lastEvent } : null, room: this.room };
      }
      this._sendMsg(ws, { type: "Hello", version: PROTOCOL_VERSION, ...hello });
    };
    ws.onmessage = (ev) => this._onMessage(ws, ev);
    ws.onerror = () => {
      if (ws !== this._ws) return;
      // The close event that follows carries the details; this one has none.
      this._emit("error", { message: "WebSocket error" });
    };
    ws.onclose = (ev) => this._onClose(ws, ev);
    this._timers.connect = this._setTimeout(() => {
      this._timers.connect = null;
      this._abandon(ws, CLIENT_CLOSE.CONNECT_TIMEOUT, "no Welcome in time");
    }, this.options.connectTimeoutMs);
  }

  _sendMsg(ws, msg) {
    try {
      ws.send(encodeClient(msg));
      return true;
    } catch (e) {
      // A send on a socket that is closing throws in some browsers; the
      // close event will follow and decide what happens.
      this._emit("error", { message: `send failed: ${e.message}` });
      return false;
    }
  }

  /**
   * Gives up on a socket the client believes dead. Its handlers are
   * detached first, so nothing it reports later can interfere, and it is
   * closed with a 3000-range code, which keeps the player on the server.
   */
  _abandon(ws, code, why) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._detach(ws);
    try {
      ws.close(code, why);
    } catch {
      // Already closed: nothing to tell the server.
    }
    this._afterSocketEnd({ code, reason: "", wasClean: false, policy: retryPolicy(code) });
  }

  _onMessage(ws, ev) {
    if (ws !== this._ws) return;
    let msg;
    try {
      msg = decodeServer(ev.data);
    } catch (e) {
      this._undecodable(ws, e.message);
      return;
    }
    if (msg.type === "Welcome") {
      if (this._session) {
        this._undecodable(ws, "a second Welcome");
        return;
      }
      this._onWelcome(ws, msg);
    } else if (msg.type === "Redirect") {
      if (this._session) {
        this._undecodable(ws, "a Redirect after Welcome");
        return;
      }
      this._onRedirect(ws, msg);
    } else if (!this._session) {
      this._undecodable(ws, `a ${msg.type} before Welcome`);
    } else if (msg.type === "State") {
      this._onState(msg);
    } else if (msg.type === "Event") {
      this._onEvent(ws, msg);
    } else {
      this._onPong(msg);
    }
  }

  /**
   * The server sent something this client cannot use. Retrying would get
   * the same again, so stop and say so; the session is kept on the server
   * (3002, not 1000) so that a reload with a fixed page can still resume.
   */
  _undecodable(ws, why) {
    this._emit("error", { message: `undecodable message from the server: ${why}` });
    this._ws = null;
    this._detach(ws);
    try {
      ws.close(CLIENT_CLOSE.UNDECODABLE, "undecodable message");
    } catch {
      // Gone already.
    }
    this._clearAll();
    this._session = null;
    this._redirect = null;
    this._attemptInfo = null;
    this._setStatus("stopped", {
      reason: `${describeClose(CLIENT_CLOSE.UNDECODABLE)} (${why})`,
      code: CLIENT_CLOSE.UNDECODABLE,
    });
  }

  /**
   * The node answered the Hello with a Redirect: the join goes on at once
   * (no back-off, no new status: it is part of connecting) at the node it
   * names, with its ticket. The 4019 close that follows is not waited for.
   */
  _onRedirect(ws, msg) {
    const url = webSocketUrl(msg.url);
    if (url === null) {
      this._undecodable(ws, `a Redirect to ${JSON.stringify(msg.url)}, which is not a WebSocket URL`);
      return;
    }
    this._ws = null;
    this._detach(ws);
    this._clear("connect");
    this._attemptInfo = null;
    try {
      ws.close(CLIENT_CLOSE.REDIRECTED, "redirected");
    } catch {
      // Closed by the server already.
    }
    this._redirects += 1;
    if (this._redirects > MAX_REDIRECTS) {
      this._redirect = null;
      this._clearAll();
      this._session = null;
      const why = `more than ${MAX_REDIRECTS} redirects in one join (the last to ${url})`;
      this._emit("error", { message: why });
      this._setStatus("stopped", { reason: `The servers could not agree where to place this player: ${why}.`, code: null });
      return;
    }
    this._redirect = { url, ticket: msg.ticket };
    this._emit("redirect", { url, hop: this._redirects });
    this._open(true);
  }

  _onWelcome(ws, msg) {
    this._clear("connect");
    // The node that says Welcome is the session's home: resumes go there.
    const home = this._attemptInfo && this._attemptInfo.ws === ws ? this._attemptInfo.url : this.url;
    this._redirect = null;
    this._redirects = 0;
    this._homeFailures = 0;
    this._homeRestartingAt = null;
    // A resumed session keeps its last event: the server replays the ones
    // after it, next on this socket. A new player starts from nothing.
    const lastEvent = msg.resumed ? this.lastEvent : 0;
    this._save(msg.resumeToken, lastEvent, home);
    // A new player's numbering starts at 0, which the server knows; a
    // resumed one continues above the ack of its first State (_onState).
    if (!msg.resumed) this._seq = 0;
    this._session = { ws, seqKnown: !msg.resumed, acked: lastEvent };
    this.welcome = msg;
    this.lastState = null;
    this._attempt = 0;
    this._setStatus("connected", {});
    if (this._rejoinReason && !msg.resumed) {
      this._emit("notice", `${this._rejoinReason} You joined as a new player (#${msg.playerId}).`);
    }
    this._rejoinReason = null;
    this._emit("welcome", msg);
    this._ping();
  }

  _onState(msg) {
    const session = this._session;
    if (!session.seqKnown) {
      // Continue numbering above what the server has applied, so that the
      // acks of this connection's messages move.
      session.seqKnown = true;
      this._seq = Math.max(this._seq, msg.ack);
    }
    this.lastState = msg;
    this._emit("state", msg);
  }

  _onEvent(ws, msg) {
    const last = this.lastEvent;
    // Already processed (the server replays only later ones, so this is a
    // confused server; harmless to skip).
    if (msg.seq <= last) return;
    if (msg.seq !== last + 1) {
      // Something between was lost: resume, and the server replays every
      // event after `last`.
      this._abandon(ws, CLIENT_CLOSE.EVENT_GAP, `event ${msg.seq} after ${last}`);
      return;
    }
    // Processed means handed to the page: stored before the handlers run,
    // so that a handler that reloads the page does not see it twice.
    this._save(this._saved.token, msg.seq, this._saved.home);
    this._emit("event", msg);
    if (this._session && this._session.ws === ws) this._scheduleAck();
  }

  /** Acknowledges the events processed, at most every ackDelayMs. */
  _scheduleAck() {
    const session = this._session;
    if (this.lastEvent - session.acked >= this.options.ackEagerEvents) {
      this._clear("ack");
      this._sendAck();
      return;
    }
    if (this._timers.ack !== null) return;
    this._timers.ack = this._setTimeout(() => {
      this._timers.ack = null;
      this._sendAck();
    }, this.options.ackDelayMs);
  }

  _sendAck() {
    const session = this._session;
    if (!session) return;
    const upto = this.lastEvent;
    if (upto <= session.acked) return;
    if (this._sendMsg(session.ws, { type: "EventAck", upto })) session.acked = upto;
  }

  _onPong(msg) {
    const sentUs = Number(msg.t);
    const rtt = this._now() - sentUs / 1000;
    // Only our own Pings are answered, so t is one of our timestamps; a
    // value from the future would be a broken server, not a measurement.
    if (!(rtt >= 0)) return;
    this._clear("pong");
    this.rtt = rtt;
    this._emit("pong", { rtt, serverTimeMs: msg.serverTimeMs });
  }

  /**
   * Sends a Ping, arms the Pong deadline unless one is already running
   * (the oldest unanswered Ping sets it), and schedules the next Ping.
   */
  _ping() {
    const session = this._session;
    if (!session || this.state !== "connected") return;
    this._clear("ping");
    // t is the send time in microseconds on the monotonic clock.
    const t = BigInt(Math.max(0, Math.round(this._now() * 1000)));
    // Armed before the send, so that even an answer delivered during the
    // send itself finds the deadline to clear.
    if (this._timers.pong === null) {
      this._timers.pong = this._setTimeout(() => {
        this._timers.pong = null;
        this._abandon(session.ws, CLIENT_CLOSE.HEARTBEAT_TIMEOUT, "no Pong in time");
      }, this.options.pongTimeoutMs);
    }
    this._sendMsg(session.ws, { type: "Ping", t });
    this._timers.ping = this._setTimeout(() => {
      this._timers.ping = null;
      this._ping();
    }, this.options.pingIntervalMs);
  }

  _onClose(ws, ev) {
    if (ws !== this._ws) return;
    this._ws = null;
    const code = ev.code;
    const reason = ev.reason || "";
    const policy = retryPolicy(code);
    const info = { code, reason, wasClean: !!ev.wasClean, policy };
    this._emit("close", info);
    this._afterSocketEnd(info);
  }

  /**
   * Decides what follows the end of a socket: by the close's retry policy,
   * and for a resume at a home other than the entry, by whether the home
   * can still be reached.
   */
  _afterSocketEnd({ code, reason, wasClean, policy }) {
    this._clearAll();
    this._session = null;
    const attempt = this._attemptInfo;
    this._attemptInfo = null;
    // A ticket is good for one try at most: whatever ended this socket,
    // the next join starts at the entry again.
    this._redirect = null;
    this.lastClose = Object.freeze({ code, reason, wasClean, policy });
    if (policy === "Stop") {
      // The server removed the player (or another tab has it, or the room
      // request cannot succeed): the token is of no further use here.
      this._forget();
      this._setStatus("stopped", { reason: describeClose(code, reason), code });
      return;
    }
    let immediate = false;
    // A home that restarts with its sessions is waited for longer.
    if (code === 1012) this._homeRestartingAt = this._now();
    if (policy === "Rejoin") {
      // A new player, with the page's room request: the next Hello has no
      // resume, so the request is what the server reads.
      this._forget();
      this._rejoinReason = describeClose(code);
      // After 4002 the server is evidently up, and without a token another
      // 4002 cannot happen, so rejoining at once cannot loop. A full server
      // (4001) may stay full, and a client that fell behind on events
      // (4017) may fall behind again, and a cluster's directory (4020) or
      // its tickets (4021) may fail again: those back off.
      immediate = code === 4002;
    } else if (attempt && attempt.kind === "resume" && !sameUrl(attempt.url, this.url)) {
      // A resume at a home that is not the entry. A home that opened is
      // alive (whatever it said); one that never opened HOME_ATTEMPTS
      // times in a row is taken for gone with its session, and the player
      // joins anew at the entry, at once: the entry is another server.
      // (When the home is the entry there is nowhere else to go: keep
      // resuming, as a server restarting with its sessions expects.) A
      // home that said 1012 is restarting with its sessions: it is given
      // HOME_RESTART_PATIENCE_MS to come back, however many attempts fail.
      const restarting =
        this._homeRestartingAt !== null && this._now() - this._homeRestartingAt < HOME_RESTART_PATIENCE_MS;
      if (attempt.opened) {
        this._homeFailures = 0;
      } else if (++this._homeFailures >= HOME_ATTEMPTS && !restarting) {
        this._forget();
        this._rejoinReason = "The server that held this session cannot be reached.";
        immediate = true;
      }
    }
    this._scheduleRetry(immediate, code);
  }

  _scheduleRetry(immediate, code) {
    this._attempt += 1;
    if (!this._network.isOnline()) {
      this._setStatus("offline", { code });
      return;
    }
    const cap = backoffCap(this._attempt, this.options.backoffBaseMs, this.options.backoffMaxMs);
    const delay = immediate ? 0 : this._random() * cap;
    this._timers.retry = this._setTimeout(() => {
      this._timers.retry = null;
      this._open();
    }, delay);
    this._setStatus("reconnecting", {
      retryInMs: delay,
      retryCapMs: cap,
      retryAt: this._now() + delay,
      code,
    });
  }

  /**
   * The browser's network status changed. Offline: stop waiting out
   * back-off timers that cannot succeed. Online: try at once. A live
   * connection is left alone (loopback and LAN games survive a lost
   * uplink), but probed with a Ping so that a dead one is noticed soon.
   */
  _onNetworkChange() {
    const online = this._network.isOnline();
    const state = this.state;
    if (state === "connected") {
      this._ping();
      this._setStatus("connected", {});
    } else if (!online && state === "reconnecting" && this._timers.retry !== null) {
      this._clear("retry");
      this._setStatus("offline", { code: this._status.code });
    } else if (online && state === "offline") {
      this._open();
    } else if (state !== "stopped" && state !== "idle") {
      // Keep the badge's online flag current while an attempt runs.
      this._setStatus(state, { ...this._status, online });
    }
  }

  /**
   * The page became visible (or hidden). Back in view, a pending retry runs
   * now (background tabs throttle timers, and the player is looking) and a
   * live connection is probed (the machine may have slept).
   */
  _onVisibilityChange() {
    if (!this._visibility.isVisible()) return;
    if (this.state === "reconnecting" && this._timers.retry !== null) this.retryNow();
    else if (this.state === "connected") this._ping();
  }
}

// ---------------------------------------------------------------------------
// Helpers for pages
// ---------------------------------------------------------------------------

function seconds(ms) {
  return ms < 10000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000));
}

/** The connection badge's words for a status. */
export function badgeText(s) {
  switch (s.state) {
    case "connecting":
      return "Connecting…";
    case "connected":
      return "Connected";
    case "reconnecting":
      return s.retryInMs === null
        ? `Reconnecting (attempt ${s.attempt}, trying now…)`
        : `Reconnecting (attempt ${s.attempt}, next try in ${seconds(s.retryInMs)} s)`;
    case "offline":
      return "Offline: waiting for the network";
    case "stopped":
      return `Stopped: ${s.reason}`;
    default:
      return "Not connected";
  }
}

/**
 * Keeps a badge element (give it role="status" and aria-live="polite") in
 * step with the session: its text is badgeText, its data-state attribute
 * the state, for the style sheet's colours. Returns a function that stops.
 */
export function bindBadge(session, element) {
  const show = (s) => {
    element.textContent = badgeText(s);
    element.dataset.state = s.state;
  };
  show(session.status);
  return session.on("status", show);
}

/** A non-negative number from the query string, or undefined for the default. */
function msParam(params, name) {
  const raw = params.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/**
 * The session options every game page takes from its query string (all
 * optional; times in milliseconds):
 *   ws=URL             the WebSocket to connect to; default: /ws on the
 *                      page's own host (wss: when the page is https:)
 *   backoffBase=MS     first retry's ceiling (default 1000)
 *   backoffMax=MS      largest retry ceiling (default 30000)
 *   pingInterval=MS    app-level Ping interval (default 3000)
 *   pongTimeout=MS     no Pong for this long means a dead connection (default 5000)
 *   connectTimeout=MS  open plus Welcome must take less (default 10000)
 * e.g. ?backoffBase=200&backoffMax=2000 retries quickly (the end-to-end
 * tests use that), and ?ws=ws://127.0.0.1:9000/ws connects through a proxy.
 */
export function sessionOptionsFromQuery(params, location = globalThis.location) {
  let url = params.get("ws");
  if (!url) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    url = `${scheme}//${location.host}/ws`;
  }
  return {
    url,
    backoffBaseMs: msParam(params, "backoffBase"),
    backoffMaxMs: msParam(params, "backoffMax"),
    pingIntervalMs: msParam(params, "pingInterval"),
    pongTimeoutMs: msParam(params, "pongTimeout"),
    connectTimeoutMs: msParam(params, "connectTimeout"),
  };
}

/**
 * The room request a game page's query string asks for, with the key its
 * session is stored under:
 *   room=ID             join the public room with that id
 *   code=CODE           join by invite code (any case, spaces or dashes)
 *   create=private      create a private room (reached by its code only)
 *   create=public       create a listed room
 *   watch=ID            a spectator's or a replay viewer's page (the
 *                       `ws` option names the watching endpoint)
 *   (none of those)     quick join `roomType`
 * `optionKeys` names the game's room options taken from the query too
 * (for quick join and create), e.g. ["pace"] for ?pace=fast.
 *
 * The storage key differs per way of joining, so a reload of the same page
 * resumes its session while opening another room's link in the same tab
 * does not take the old session there.
 */
export function roomRequestFromQuery(params, roomType, optionKeys = []) {
  const watch = params.get("watch");
  if (watch !== null) {
    // A spectator's or a replay viewer's page (its `ws` is a watching
    // endpoint, which reads no room request): its session is kept apart
    // from the player's own, so watching never disturbs playing.
    return { request: { type: "QuickJoin", roomType, options: [] }, storageKey: `${roomType}:watch=${watch}` };
  }
  const options = [];
  for (const key of optionKeys) {
    const value = params.get(key);
    if (value !== null) options.push([key, value]);
  }
  const suffix = options.map(([k, v]) => `&${k}=${v}`).join("");
  const room = params.get("room");
  if (room !== null && /^\d{1,10}$/.test(room) && Number(room) <= 0xffffffff) {
    return { request: { type: "JoinById", roomId: Number(room) }, storageKey: `${roomType}:room=${room}` };
  }
  const typed = params.get("code");
  if (typed !== null) {
    // A code that cannot be one is still sent (clipped to the field's
    // bound): the server's answer, no such room, is the one to show.
    const code = normalizeCode(typed) ?? typed.slice(0, MAX_CODE_FIELD_BYTES);
    return { request: { type: "JoinByCode", code }, storageKey: `${roomType}:code=${code}` };
  }
  const create = params.get("create");
  if (create === "private" || create === "public") {
    return {
      request: { type: "Create", roomType, options, private: create === "private" },
      storageKey: `${roomType}:create=${create}${suffix}`,
    };
  }
  return { request: { type: "QuickJoin", roomType, options }, storageKey: `${roomType}:quick${suffix}` };
}
