// arena.js: the reusable JavaScript client of the arena game server.
//
// What it is for: talking to the server from a browser (or from Node in
// tests). It holds two things a game page needs and nothing else:
//
//   1. the codec: bincode encoding and decoding of every message of
//      protocol/PROTOCOL.md, written from that document and tested against
//      the Rust encoder's golden vectors (protocol/golden/vectors.json);
//   2. GameConnection: one player's session, kept alive across network
//      trouble. It opens the WebSocket, says Hello, resumes with the stored
//      token after an unclean drop, backs off exponentially with full jitter
//      between attempts, sends app-level Pings and treats a missing Pong as
//      a dead connection, follows the retry policy of each close code
//      (PROTOCOL.md section 7), waits while the browser says it is offline,
//      and paces inputs under the server's rate limit.
//
//   3. SnapshotBuffer: smooth motion between snapshots. It places each
//      snapshot on the server's tick timeline and answers "where was
//      everything a little while ago", interpolating between the two
//      snapshots around that moment.
//
// What it is not for: drawing, keyboards, the DOM. It needs only a
// WebSocket class, timers, a clock, a random source and a key-value store,
// and every one of them can be passed in, which is how the unit tests drive
// it with a fake socket and fake timers. game.js is the page built on it
// (and documents the page's window.__arena debug hook).
//
// No build step: this file is an ES module served as it is.
//
// Numbers: u16 and u32 fields are JavaScript Numbers. u64 fields (Ping.t,
// Pong.t, Pong.serverTimeMs) are BigInts, so every value up to 2^64 - 1
// survives a round trip exactly; the encoder also accepts a Number that is
// a safe integer. Resume tokens are Uint8Array(16).
//
// Using it:
//
//   import { GameConnection } from "./arena.js";
//   const conn = new GameConnection({ url: "ws://127.0.0.1:8080/ws" });
//   conn.on("status", (s) => console.log(s.state, s.attempt, s.retryInMs));
//   conn.on("snapshot", (snap) => draw(snap));
//   conn.connect();
//   conn.setInput(127, 0);   // keep moving right until told otherwise
//   conn.leave();            // close 1000: the player leaves for good
//
// Events (conn.on(name, fn) returns a function that unsubscribes):
//   "status"   every state change: a frozen copy of conn.status (below)
//   "welcome"  a Welcome: the session is open (new or resumed)
//   "snapshot" every Snapshot
//   "pong"     { rtt, serverTimeMs } for each Pong; rtt in milliseconds
//   "close"    { code, reason, wasClean, policy } when a socket that had
//              been handed to the server closes (not for sockets the client
//              abandoned itself)
//   "notice"   a sentence for the player ("the server forgot the session,
//              you joined as a new player")
//   "error"    { message } for socket errors and undecodable messages
//
// conn.status: { state, attempt, retryInMs, retryCapMs, retryAt, reason,
// code, online }, where state is one of
//   "idle"         not started, or disposed
//   "connecting"   first attempt: opening the socket, waiting for Welcome
//   "connected"    Welcome received, snapshots flowing
//   "reconnecting" attempt `attempt` (1, 2, ...) after a drop: waiting
//                  `retryInMs` (at most `retryCapMs`) until `retryAt`, or
//                  with retryInMs null, trying now
//   "offline"      the browser reports no network; waiting for it
//   "stopped"      will not retry by itself; `reason` says why, `code` is
//                  the close code (null when there was none)

export const PROTOCOL_VERSION = 1;

/** Largest client message the server accepts (PROTOCOL.md section 1). */
export const MAX_CLIENT_MSG_BYTES = 256;

/** Largest server message this client accepts: more means a broken server. */
export const MAX_SERVER_MSG_BYTES = 1 << 20;

/** EntityKind variants, by wire index. */
export const ENTITY_KINDS = Object.freeze(["Player", "Pickup", "DroppedPlayer"]);

/**
 * Every close code the server sends, with its retry policy, exactly as
 * `CloseCode::retry` in protocol/src/close.rs (the codec test compares this
 * table with the golden file, which is generated from that code).
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
  /** The page disposed of the connection (keeps the session for a reload). */
  DISPOSED: 3003,
});

/**
 * What to do after a close with `code`: "Resume", "Rejoin" or "Stop".
 * Codes the server never sends (1006: no close frame at all, 1005: no code,
 * this client's own 3000-range codes) mean the connection broke rather than
 * ended, and the server keeps the player for its grace period in exactly
 * that case, so they resume (PROTOCOL.md section 7).
 */
export function retryPolicy(code) {
  const known = CLOSE_CODES[code];
  return known ? known.retry : "Resume";
}

// ---------------------------------------------------------------------------
// Codec
// ---------------------------------------------------------------------------

/** A payload that is not exactly one valid message. */
export class DecodeError extends Error {
  constructor(message) {
    super(message);
    this.name = "DecodeError";
  }
}

const U64_MAX = (1n << 64n) - 1n;

/** Appends bytes; grows as needed. */
class Writer {
  constructor() {
    this.bytes = [];
  }

  u8(b) {
    this.bytes.push(b);
  }

  /** A varint of a field of `bits` (16, 32 or 64) bits, shortest form. */
  varint(value, bits, field) {
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

  i8(value, field) {
    if (!Number.isInteger(value) || value < -128 || value > 127) {
      throw new RangeError(`${field}: ${value} is outside i8`);
    }
    this.bytes.push(value & 0xff);
  }

  bool(value, field) {
    if (typeof value !== "boolean") throw new TypeError(`${field}: expected a boolean`);
    this.bytes.push(value ? 1 : 0);
  }

  token(value, field) {
    if (!(value instanceof Uint8Array) || value.length !== 16) {
      throw new TypeError(`${field}: expected a Uint8Array of 16 bytes`);
    }
    for (const b of value) this.bytes.push(b);
  }

  finish() {
    return Uint8Array.from(this.bytes);
  }
}

/** Reads from a Uint8Array; every read checks the bounds. */
class Reader {
  constructor(bytes) {
    this.b = bytes;
    this.i = 0;
  }

  remaining() {
    return this.b.length - this.i;
  }

  need(n) {
    if (this.i + n > this.b.length) throw new DecodeError("the message ends too early");
  }

  u8() {
    this.need(1);
    return this.b[this.i++];
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

  i8() {
    return (this.u8() << 24) >> 24;
  }

  bool() {
    const b = this.u8();
    if (b > 1) throw new DecodeError(`invalid bool byte ${b}`);
    return b === 1;
  }

  token() {
    this.need(16);
    const t = this.b.slice(this.i, this.i + 16);
    this.i += 16;
    return t;
  }

  /** The variant index of an enum with `count` variants. */
  variant(count, what) {
    const v = this.varint(32);
    if (v >= count) throw new DecodeError(`unknown ${what} variant ${v}`);
    return v;
  }

  end() {
    if (this.i !== this.b.length) {
      throw new DecodeError(`${this.b.length - this.i} trailing bytes after the message`);
    }
  }
}

function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new DecodeError("expected binary data (ArrayBuffer or Uint8Array)");
}

/**
 * Encodes a client message:
 *   { type: "Hello", version, resume: Uint8Array(16) | null }
 *   { type: "Input", seq, dx, dy }          dx, dy in -128..127
 *   { type: "Ping", t }                      t a BigInt or safe integer
 */
export function encodeClient(msg) {
  const w = new Writer();
  switch (msg.type) {
    case "Hello":
      w.u8(0);
      w.varint(msg.version, 16, "Hello.version");
      if (msg.resume == null) {
        w.u8(0);
      } else {
        w.u8(1);
        w.token(msg.resume, "Hello.resume");
      }
      break;
    case "Input":
      w.u8(1);
      w.varint(msg.seq, 32, "Input.seq");
      w.i8(msg.dx, "Input.dx");
      w.i8(msg.dy, "Input.dy");
      break;
    case "Ping":
      w.u8(2);
      w.varint(msg.t, 64, "Ping.t");
      break;
    default:
      throw new TypeError(`unknown client message type ${msg.type}`);
  }
  return w.finish();
}

/** Decodes one client message (the server's side; used by tests and tools). */
export function decodeClient(data) {
  const bytes = asBytes(data);
  if (bytes.length > MAX_CLIENT_MSG_BYTES) {
    throw new DecodeError(`message of ${bytes.length} bytes exceeds ${MAX_CLIENT_MSG_BYTES}`);
  }
  const r = new Reader(bytes);
  let msg;
  switch (r.variant(3, "ClientMsg")) {
    case 0: {
      const version = r.varint(16);
      const tag = r.u8();
      if (tag > 1) throw new DecodeError(`invalid Option tag ${tag}`);
      msg = { type: "Hello", version, resume: tag === 1 ? r.token() : null };
      break;
    }
    case 1:
      msg = { type: "Input", seq: r.varint(32), dx: r.i8(), dy: r.i8() };
      break;
    default:
      msg = { type: "Ping", t: r.varint(64) };
  }
  r.end();
  return msg;
}

/**
 * Encodes a server message (the server's side; the tests' fake server uses
 * it). Shapes are those decodeServer returns.
 */
export function encodeServer(msg) {
  const w = new Writer();
  switch (msg.type) {
    case "Welcome":
      w.u8(0);
      w.varint(msg.version, 16, "Welcome.version");
      w.varint(msg.playerId, 32, "Welcome.playerId");
      w.varint(msg.roomId, 32, "Welcome.roomId");
      w.token(msg.resumeToken, "Welcome.resumeToken");
      w.bool(msg.resumed, "Welcome.resumed");
      w.varint(msg.tickHz, 16, "Welcome.tickHz");
      w.varint(msg.worldWidth, 16, "Welcome.worldWidth");
      w.varint(msg.worldHeight, 16, "Welcome.worldHeight");
      w.varint(msg.viewRadius, 16, "Welcome.viewRadius");
      break;
    case "Snapshot":
      w.u8(1);
      w.varint(msg.tick, 32, "Snapshot.tick");
      w.varint(msg.ack, 32, "Snapshot.ack");
      w.varint(msg.players, 16, "Snapshot.players");
      w.varint(msg.entities.length, 64, "Snapshot.entities.length");
      for (const e of msg.entities) {
        const kind = ENTITY_KINDS.indexOf(e.kind);
        if (kind < 0) throw new RangeError(`unknown entity kind ${e.kind}`);
        w.varint(e.id, 32, "Entity.id");
        w.u8(kind);
        w.varint(e.x, 16, "Entity.x");
        w.varint(e.y, 16, "Entity.y");
        w.varint(e.score, 32, "Entity.score");
      }
      break;
    case "Pong":
      w.u8(2);
      w.varint(msg.t, 64, "Pong.t");
      w.varint(msg.serverTimeMs, 64, "Pong.serverTimeMs");
      break;
    default:
      throw new TypeError(`unknown server message type ${msg.type}`);
  }
  return w.finish();
}

/** The smallest encoding of one entity: five one-byte fields. */
const MIN_ENTITY_BYTES = 5;

/**
 * Decodes one server message (untrusted input) from an ArrayBuffer or
 * Uint8Array, or throws DecodeError:
 *   { type: "Welcome", version, playerId, roomId, resumeToken, resumed,
 *     tickHz, worldWidth, worldHeight, viewRadius }
 *   { type: "Snapshot", tick, ack, players,
 *     entities: [{ id, kind: "Player" | "Pickup" | "DroppedPlayer", x, y, score }] }
 *   { type: "Pong", t: BigInt, serverTimeMs: BigInt }
 */
export function decodeServer(data) {
  const bytes = asBytes(data);
  if (bytes.length > MAX_SERVER_MSG_BYTES) {
    throw new DecodeError(`message of ${bytes.length} bytes exceeds ${MAX_SERVER_MSG_BYTES}`);
  }
  const r = new Reader(bytes);
  let msg;
  switch (r.variant(3, "ServerMsg")) {
    case 0:
      msg = {
        type: "Welcome",
        version: r.varint(16),
        playerId: r.varint(32),
        roomId: r.varint(32),
        resumeToken: r.token(),
        resumed: r.bool(),
        tickHz: r.varint(16),
        worldWidth: r.varint(16),
        worldHeight: r.varint(16),
        viewRadius: r.varint(16),
      };
      break;
    case 1: {
      const tick = r.varint(32);
      const ack = r.varint(32);
      const players = r.varint(16);
      const count = r.varint(64);
      // Check the claim against the bytes before allocating anything: a
      // 13-byte message can claim 2^56 entities.
      if (count > BigInt(Math.floor(r.remaining() / MIN_ENTITY_BYTES))) {
        throw new DecodeError(`an entity count of ${count} exceeds the payload`);
      }
      const entities = new Array(Number(count));
      for (let k = 0; k < entities.length; k++) {
        const id = r.varint(32);
        const kind = ENTITY_KINDS[r.variant(ENTITY_KINDS.length, "EntityKind")];
        entities[k] = { id, kind, x: r.varint(16), y: r.varint(16), score: r.varint(32) };
      }
      msg = { type: "Snapshot", tick, ack, players, entities };
      break;
    }
    default:
      msg = { type: "Pong", t: r.varint(64), serverTimeMs: r.varint(64) };
  }
  r.end();
  return msg;
}

/** A token as 32 lower-case hex digits (the form PROTOCOL.md suggests). */
export function tokenToHex(token) {
  return Array.from(token, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The inverse of tokenToHex; null for anything that is not a token. */
export function tokenFromHex(text) {
  if (typeof text !== "string" || !/^[0-9a-f]{32}$/.test(text)) return null;
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
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
// The connection
// ---------------------------------------------------------------------------

/** Defaults of GameConnection's options, each with its reason. */
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
   * While moving, resend the current input every 250 ms: the player keeps
   * its velocity anyway, but the acks keep flowing and a dropped input is
   * repaired.
   */
  inputRepeatMs: 250,
  /**
   * At most one input per 34 ms (about 30/s) however fast the direction
   * changes, half the server's limit of 60/s.
   */
  minInputIntervalMs: 34,
  /** sessionStorage key prefix of the resume token; the URL is appended. */
  storageKey: "arena.resumeToken",
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
    4003: "Kicked: inputs were sent too fast.",
    4004: "The connection was too slow to keep up.",
    4005: "The server heard nothing from this client for too long.",
    4006: "The server is full.",
    4007: "This player was taken over by another tab or window.",
    4008: "The handshake took too long.",
    [CLIENT_CLOSE.HEARTBEAT_TIMEOUT]: "No answer from the server: the connection seems dead.",
    [CLIENT_CLOSE.CONNECT_TIMEOUT]: "The server did not answer in time.",
    [CLIENT_CLOSE.UNDECODABLE]: "The server sent a message this client cannot read.",
    1006: "The connection was lost.",
    1005: "The connection was closed without a code.",
  }[code];
  const text = base || `The connection closed (code ${code}).`;
  return reason ? `${text} (${reason})` : text;
}

/** Bound on conn.log, the recent history kept for debugging and tests. */
const LOG_LIMIT = 200;

const IDLE_INPUT = Object.freeze({ dx: 0, dy: 0 });

function clampAxis(v) {
  const n = Math.round(Number(v));
  if (!Number.isFinite(n)) return 0;
  // -128 is read as -127 by the server; send the documented range only.
  return Math.max(-127, Math.min(127, n));
}

/**
 * One player's session with the server. See the top of this file for the
 * events and states. Options (all optional but `url`; defaults in DEFAULTS):
 *
 *   url                         ws:// or wss:// URL of the server's /ws
 *   backoffBaseMs, backoffMaxMs, pingIntervalMs, pongTimeoutMs,
 *   connectTimeoutMs, inputRepeatMs, minInputIntervalMs, storageKey
 *   WebSocket                   the WebSocket class (default: the global)
 *   setTimeout, clearTimeout    timers (default: the globals, looked up at
 *                               each call so that fake timers apply)
 *   now                         a monotonic clock in ms (default performance.now)
 *   random                      a source in [0, 1) (default Math.random)
 *   storage                     getItem/setItem/removeItem (default sessionStorage)
 *   network                     { isOnline(), subscribe(fn) -> unsubscribe }
 *   visibility                  { isVisible(), subscribe(fn) -> unsubscribe }
 */
export class GameConnection {
  constructor(options) {
    if (!options || typeof options.url !== "string") throw new TypeError("GameConnection needs a url");
    this.url = options.url;
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
    // The token is kept per server URL, so that a page pointed at another
    // server never hands that server this one's token.
    this._storageKey = `${o.storageKey}:${this.url}`;

    this._handlers = new Map();
    this._timers = { retry: null, connect: null, ping: null, pong: null, input: null };
    this._ws = null;
    this._leaving = false;
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
    this._session = null;
    /** The token, when storage refused it (kept for this page's life only). */
    this._memoryToken = null;
    this.welcome = null;
    this.lastSnapshot = null;
    this.rtt = null;
    this.lastClose = null;
    this.log = [];
    this._seq = 0;
    this._desired = IDLE_INPUT;
    this._unsubscribe = [
      this._network.subscribe(() => this._onNetworkChange()),
      this._visibility.subscribe(() => this._onVisibilityChange()),
    ];
  }

  // ---- public surface ----

  /** The current state; a frozen object, replaced on every change. */
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

  /** The seq of the last input sent. */
  get inputSeq() {
    return this._seq;
  }

  /** The stored resume token, or null. */
  get token() {
    return this._loadToken();
  }

  on(type, handler) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(handler);
    return () => this._handlers.get(type).delete(handler);
  }

  /**
   * Starts (or restarts after "stopped") the session: resumes with the
   * stored token if there is one, else joins as a new player. While
   * reconnecting or offline it tries at once instead of waiting.
   */
  connect() {
    const state = this.state;
    if (state === "connected" || state === "connecting") return;
    if (state === "reconnecting" || state === "offline") {
      this.retryNow();
      return;
    }
    this._leaving = false;
    this._attempt = 0;
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
   * Leaves for good: closes with 1000, so the server removes the player at
   * once, and forgets the token. connect() afterwards joins a new player.
   */
  leave() {
    this._forgetToken();
    this._clearAll();
    this._leaving = true;
    const ws = this._ws;
    if (ws) {
      this._ws = null;
      this._detach(ws);
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
    for (const off of this._unsubscribe) off();
    this._unsubscribe = [];
    this._setStatus("idle", {});
  }

  /**
   * The direction the player wants to move, each axis -127..127 (rounded
   * and clamped). Sent when it changes (at most one input per
   * minInputIntervalMs), repeated every inputRepeatMs while non-zero, and
   * sent again after a reconnect, since the server resumes a player standing
   * still. Nothing is sent while there is no session.
   */
  setInput(dx, dy) {
    this._desired = { dx: clampAxis(dx), dy: clampAxis(dy) };
    this._pumpInput();
  }

  // ---- internals ----

  _emit(type, value) {
    const set = this._handlers.get(type);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        handler(value);
      } catch (e) {
        // One broken handler must not break the connection or other handlers.
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

  _storageGet() {
    try {
      return this._storage.getItem(this._storageKey);
    } catch {
      return null;
    }
  }

  _storeToken(token) {
    try {
      this._storage.setItem(this._storageKey, tokenToHex(token));
    } catch {
      // Storage full or disabled: this tab cannot resume after a reload,
      // but it still resumes after a drop through the socket's own retry.
      this._memoryToken = token;
    }
  }

  _loadToken() {
    return tokenFromHex(this._storageGet()) || this._memoryToken || null;
  }

  _forgetToken() {
    this._memoryToken = null;
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

  /** Opens a socket: the first attempt, or a retry. */
  _open() {
    this._clear("retry");
    if (this._attempt > 0) this._setStatus("reconnecting", { attempt: this._attempt });
    else this._setStatus("connecting", {});
    let ws;
    try {
      ws = new this._WebSocket(this.url);
    } catch (e) {
      // Only a malformed URL throws here; retrying cannot fix it.
      this._setStatus("stopped", { reason: `Cannot connect to ${this.url}: ${e.message}`, code: null });
      return;
    }
    this._ws = ws;
    this._session = null;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      if (ws !== this._ws) return;
      const resume = this._loadToken();
      this._send(ws, { type: "Hello", version: PROTOCOL_VERSION, resume });
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

  _send(ws, msg) {
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
    } else if (!this._session) {
      this._undecodable(ws, `a ${msg.type} before Welcome`);
      return;
    } else if (msg.type === "Snapshot") {
      this._onSnapshot(msg);
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
    this._setStatus("stopped", {
      reason: `${describeClose(CLIENT_CLOSE.UNDECODABLE)} (${why})`,
      code: CLIENT_CLOSE.UNDECODABLE,
    });
  }

  _onWelcome(ws, msg) {
    this._clear("connect");
    this._storeToken(msg.resumeToken);
    this._session = { ws, seqKnown: false, sent: IDLE_INPUT, lastInputAt: null };
    // A new player's acks start from 0; a resumed one continues above the
    // ack of its first snapshot (see _onSnapshot).
    if (!msg.resumed) this._seq = 0;
    this.welcome = msg;
    this.lastSnapshot = null;
    this._attempt = 0;
    this._setStatus("connected", {});
    if (this._rejoinReason && !msg.resumed) {
      this._emit("notice", `${this._rejoinReason} You joined as a new player (#${msg.playerId}).`);
    }
    this._rejoinReason = null;
    this._emit("welcome", msg);
    this._ping();
  }

  _onSnapshot(msg) {
    const session = this._session;
    if (!session.seqKnown) {
      // Continue numbering above what the server has applied, so that the
      // acks of this connection's inputs move (PROTOCOL.md section 2.2).
      session.seqKnown = true;
      this._seq = Math.max(this._seq, msg.ack);
    }
    this.lastSnapshot = msg;
    this._emit("snapshot", msg);
    if (session === this._session) this._pumpInput();
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
    this._send(session.ws, { type: "Ping", t });
    this._timers.ping = this._setTimeout(() => {
      this._timers.ping = null;
      this._ping();
    }, this.options.pingIntervalMs);
  }

  /** Sends the desired input when it is due; see setInput. */
  _pumpInput() {
    this._clear("input");
    const session = this._session;
    if (!session || !session.seqKnown || this.state !== "connected") return;
    const d = this._desired;
    const changed = d.dx !== session.sent.dx || d.dy !== session.sent.dy;
    const moving = d.dx !== 0 || d.dy !== 0;
    if (!changed && !moving) return;
    const gap = changed ? this.options.minInputIntervalMs : this.options.inputRepeatMs;
    const wait = session.lastInputAt === null ? 0 : session.lastInputAt + gap - this._now();
    if (wait > 0) {
      this._timers.input = this._setTimeout(() => {
        this._timers.input = null;
        this._pumpInput();
      }, wait);
      return;
    }
    // seq is a u32; a session would need 800 days of inputs at 60/s to wrap.
    this._seq += 1;
    this._send(session.ws, { type: "Input", seq: this._seq, dx: d.dx, dy: d.dy });
    session.sent = d;
    session.lastInputAt = this._now();
    this._pumpInput();
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

  /** Decides what follows the end of a socket, by the close's retry policy. */
  _afterSocketEnd({ code, reason, wasClean, policy }) {
    this._clearAll();
    this._session = null;
    this.lastClose = Object.freeze({ code, reason, wasClean, policy });
    if (policy === "Stop") {
      // The server removed the player (or another tab has it): the token
      // is of no further use to this tab.
      this._forgetToken();
      this._setStatus("stopped", { reason: describeClose(code, reason), code });
      return;
    }
    let immediate = false;
    if (policy === "Rejoin") {
      this._forgetToken();
      this._rejoinReason = describeClose(code);
      // After 4002 the server is evidently up, and without a token another
      // 4002 cannot happen, so rejoining at once cannot loop. A full room
      // (4001) may stay full: that one backs off.
      immediate = code === 4002;
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
// Interpolation
// ---------------------------------------------------------------------------

/**
 * The key that follows one entity across snapshots. A player keeps its id
 * when it turns from Player into DroppedPlayer and back, and ids are unique
 * only per kind, so players share one key space and pickups have another.
 */
export function entityKey(entity) {
  return entity.kind === "Pickup" ? `k${entity.id}` : `p${entity.id}`;
}

/**
 * Recent snapshots on the server's tick timeline, for drawing smooth motion
 * at any frame rate from snapshots that arrive at the tick rate, late, or
 * not at all (the server skips snapshots for a slow reader).
 *
 * Each snapshot's arrival time minus its tick's nominal time is a sample of
 * the clock offset plus that snapshot's delay; the smallest recent sample is
 * the least-delayed path, so "now" on the tick timeline is estimated from
 * it. Drawing happens `delayTicks` behind that, so that the snapshot after
 * the drawn moment has usually arrived and there is something to
 * interpolate towards. Nothing is extrapolated: when the next snapshot is
 * late, everything holds still at the newest one.
 */
export class SnapshotBuffer {
  /**
   * tickHz: the room's tick rate (Welcome.tickHz). delayTicks: how far
   * behind the estimated present to draw; 2 ticks (67 ms at 30 Hz) covers
   * ordinary jitter. maxJump: a move longer than this between two snapshots
   * is a teleport (a respawned pickup), drawn as a jump, not a glide.
   */
  constructor({ tickHz = 30, delayTicks = 2, maxJump = 150 } = {}) {
    this.delayTicks = delayTicks;
    this.maxJump = maxJump;
    this.reset(tickHz);
  }

  /** Forgets everything; call on every Welcome (a rejoin may change room). */
  reset(tickHz) {
    this.periodMs = 1000 / tickHz;
    this.entries = [];
    this.offsets = [];
  }

  /** Adds a snapshot that arrived at `arrivalMs` (a monotonic clock). */
  push(snapshot, arrivalMs) {
    const last = this.entries[this.entries.length - 1];
    // Ticks only grow within a room; an older one is a duplicate or stale.
    if (last && snapshot.tick <= last.tick) return;
    const map = new Map();
    for (const e of snapshot.entities) map.set(entityKey(e), e);
    this.entries.push({ tick: snapshot.tick, snapshot, map });
    this.offsets.push(arrivalMs - snapshot.tick * this.periodMs);
    // Three seconds of offsets: long enough to find a quick path, short
    // enough to follow a clock that drifts.
    const keep = Math.ceil(3000 / this.periodMs);
    if (this.offsets.length > keep) this.offsets.splice(0, this.offsets.length - keep);
    if (this.entries.length > keep) this.entries.splice(0, this.entries.length - keep);
  }

  /** The (fractional) tick to draw at `nowMs`, or null before any snapshot. */
  renderTick(nowMs) {
    if (this.entries.length === 0) return null;
    const offset = Math.min(...this.offsets);
    return (nowMs - offset) / this.periodMs - this.delayTicks;
  }

  /**
   * Everything as it was at the render tick for `nowMs`: { tick, latest,
   * entities }, where entities carry their snapshot fields plus `key`;
   * null before the first snapshot.
   */
  sample(nowMs) {
    const entries = this.entries;
    if (entries.length === 0) return null;
    const rt = this.renderTick(nowMs);
    const latest = entries[entries.length - 1];
    let a = entries[0];
    let b = null;
    for (let i = entries.length - 1; i >= 0; i--) {
      if (entries[i].tick <= rt) {
        a = entries[i];
        b = entries[i + 1] || null;
        break;
      }
    }
    if (rt < entries[0].tick) b = null;
    // Entries before `a` are never needed again.
    const drop = entries.indexOf(a);
    if (drop > 0) {
      entries.splice(0, drop);
    }
    if (!b) {
      const entities = a.snapshot.entities.map((e) => ({ ...e, key: entityKey(e) }));
      return { tick: Math.min(Math.max(rt, entries[0].tick), latest.tick), latest: latest.snapshot, entities };
    }
    const alpha = (rt - a.tick) / (b.tick - a.tick);
    const entities = b.snapshot.entities.map((e) => {
      const key = entityKey(e);
      const from = a.map.get(key);
      if (!from || Math.hypot(e.x - from.x, e.y - from.y) > this.maxJump) return { ...e, key };
      return { ...e, key, x: from.x + (e.x - from.x) * alpha, y: from.y + (e.y - from.y) * alpha };
    });
    return { tick: rt, latest: latest.snapshot, entities };
  }
}
