// Test doubles for driving a Session (session.js) without a network: a
// WebSocket class the test plays the server for, switchable stand-ins for
// navigator.onLine and document.visibilityState, and a `setup` that wires
// a Session to them with node:test's fake timers.
//
// Not a test itself (no *.test.mjs name). Time moves only through the
// returned tick(), so nothing that uses this depends on the machine's speed.

import {
  Session,
  decodeClient,
  encodeServer,
  memoryStorage,
} from "../session.js";

export const URL_ = "ws://game.test/ws";
export const TOKEN = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
export const ROOM = Object.freeze({ type: "QuickJoin", roomType: "four", options: [] });

/** A WebSocket stand-in the test plays the server for. */
export function fakeSockets() {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      sockets.push(this);
    }
    send(bytes) {
      if (this.readyState !== 1) throw new Error("InvalidStateError: not open");
      this.sent.push(decodeClient(bytes));
    }
    close(code, reason) {
      this.closedWith = { code, reason };
      this.readyState = 2;
    }
    // ---- the test's side ----
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    deliver(msg) {
      const bytes = encodeServer(msg);
      this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) });
    }
    serverClose(code, reason = "", wasClean = true) {
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean });
    }
    /** The connection fails without a close frame (refused, reset, lost). */
    drop() {
      this.readyState = 3;
      this.onerror?.({});
      this.onclose?.({ code: 1006, reason: "", wasClean: false });
    }
    sentOf(type) {
      return this.sent.filter((m) => m.type === type);
    }
  }
  return { FakeSocket, sockets, last: () => sockets[sockets.length - 1] };
}

export function welcome(overrides = {}) {
  return {
    type: "Welcome",
    version: 2,
    playerId: 7,
    roomId: 1,
    roomType: "four",
    inviteCode: null,
    resumeToken: TOKEN,
    resumed: false,
    tickHz: 20,
    game: Uint8Array.of(7, 6),
    ...overrides,
  };
}

export function stateMsg(tick, ack, data = Uint8Array.of(tick & 0xff)) {
  return { type: "State", tick, ack, data };
}

export function eventMsg(seq, data = Uint8Array.of(seq & 0xff)) {
  return { type: "Event", seq, data };
}

/** A switchable stand-in for navigator.onLine / document.visibilityState. */
export function flag(initial) {
  const listeners = new Set();
  let value = initial;
  return {
    get: () => value,
    set(v) {
      value = v;
      for (const fn of listeners) fn();
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

/**
 * A session wired to fakes, with fake timers on. `random` defaults to 0.5
 * so that every delay is half its ceiling. options.session overrides the
 * Session's own options (room, storageKey, timings).
 */
export function setup(t, options = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
  const fake = fakeSockets();
  const online = flag(true);
  const visible = flag(true);
  const storage = options.storage || memoryStorage();
  const session = new Session({
    url: URL_,
    room: ROOM,
    WebSocket: fake.FakeSocket,
    now: () => Date.now(),
    random: options.random || (() => 0.5),
    storage,
    network: { isOnline: online.get, subscribe: online.subscribe },
    visibility: { isVisible: visible.get, subscribe: visible.subscribe },
    ...options.session,
  });
  const events = { status: [], notice: [], welcome: [], close: [], state: [], event: [] };
  for (const name of Object.keys(events)) session.on(name, (v) => events[name].push(v));
  const tick = (ms) => t.mock.timers.tick(ms);
  return { session, ...fake, online, visible, storage, events, tick };
}

/** Opens the newest socket and completes the handshake. */
export function accept(env, w = welcome()) {
  const ws = env.last();
  ws.open();
  ws.deliver(w);
  return ws;
}
