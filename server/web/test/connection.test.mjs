// Unit tests of GameConnection (arena.js) with a fake WebSocket class and
// node:test's fake timers: the back-off schedule, its reset, the state
// machine for every class of close code, the heartbeat, offline/online and
// visibility handling, input pacing and numbering, leaving.
//
// Time moves only through t.mock.timers.tick(), so nothing here depends on
// the machine's speed. Not for the codec (codec.test.mjs) or real sockets
// and browsers (e2e/).

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CLIENT_CLOSE,
  GameConnection,
  backoffCap,
  backoffDelay,
  decodeClient,
  encodeServer,
  memoryStorage,
  tokenToHex,
} from "../arena.js";

const URL_ = "ws://game.test/ws";
const TOKEN = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);

/** A WebSocket stand-in the test plays the server for. */
function fakeSockets() {
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

function welcome(overrides = {}) {
  return {
    type: "Welcome",
    version: 1,
    playerId: 7,
    roomId: 1,
    resumeToken: TOKEN,
    resumed: false,
    tickHz: 30,
    worldWidth: 2000,
    worldHeight: 2000,
    viewRadius: 300,
    ...overrides,
  };
}

function snapshot(tick, ack, entities = []) {
  return { type: "Snapshot", tick, ack, players: 1, entities };
}

/** A switchable stand-in for navigator.onLine / document.visibilityState. */
function flag(initial) {
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
 * A connection wired to fakes, with fake timers on. `random` defaults to
 * 0.5 so that every delay is half its ceiling.
 */
function setup(t, options = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
  const fake = fakeSockets();
  const online = flag(true);
  const visible = flag(true);
  const storage = options.storage || memoryStorage();
  const conn = new GameConnection({
    url: URL_,
    WebSocket: fake.FakeSocket,
    now: () => Date.now(),
    random: options.random || (() => 0.5),
    storage,
    network: { isOnline: online.get, subscribe: online.subscribe },
    visibility: { isVisible: visible.get, subscribe: visible.subscribe },
    ...options.conn,
  });
  const events = { status: [], notice: [], welcome: [], close: [] };
  for (const name of Object.keys(events)) conn.on(name, (v) => events[name].push(v));
  const tick = (ms) => t.mock.timers.tick(ms);
  return { conn, ...fake, online, visible, storage, events, tick };
}

/** Opens the newest socket and completes the handshake. */
function accept(env, w = welcome()) {
  const ws = env.last();
  ws.open();
  ws.deliver(w);
  return ws;
}

test("the back-off ceiling doubles from the base up to the maximum", () => {
  const caps = [1, 2, 3, 4, 5, 6, 7, 50].map((n) => backoffCap(n, 1000, 30000));
  assert.deepEqual(caps, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(backoffCap(3, 200, 2000), 800);
  // Full jitter: the delay is random() times the ceiling, never more.
  assert.equal(backoffDelay(3, 1000, 30000, () => 0), 0);
  assert.equal(backoffDelay(3, 1000, 30000, () => 0.25), 1000);
  assert.equal(backoffDelay(9, 1000, 30000, () => 0.999), 29970);
});

test("failed attempts retry on the jittered schedule, each only after its delay", (t) => {
  const env = setup(t);
  env.conn.connect();
  assert.equal(env.conn.state, "connecting");
  const delays = [];
  for (let attempt = 1; attempt <= 7; attempt++) {
    env.last().drop();
    const s = env.conn.status;
    assert.equal(s.state, "reconnecting");
    assert.equal(s.attempt, attempt);
    delays.push(s.retryInMs);
    assert.equal(s.retryCapMs, backoffCap(attempt, 1000, 30000));
    const before = env.sockets.length;
    env.tick(s.retryInMs - 1);
    assert.equal(env.sockets.length, before, `attempt ${attempt} must wait its delay`);
    env.tick(1);
    assert.equal(env.sockets.length, before + 1, `attempt ${attempt} runs after its delay`);
    assert.equal(env.conn.status.retryInMs, null, "trying now");
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000]);
});

test("the back-off resets after a successful connection", (t) => {
  const env = setup(t);
  env.conn.connect();
  for (let i = 0; i < 4; i++) {
    env.last().drop();
    env.tick(env.conn.status.retryInMs);
  }
  assert.equal(env.conn.status.attempt, 4);
  accept(env);
  assert.equal(env.conn.state, "connected");
  assert.equal(env.conn.status.attempt, 0);
  env.last().drop();
  assert.equal(env.conn.status.attempt, 1);
  assert.equal(env.conn.status.retryCapMs, 1000);
});

test("Resume codes and 1006 reconnect with the stored token and get the player back", (t) => {
  for (const code of [1001, 1006, 1011, 1012, 4004, 4005, 4006, 4008, 3999]) {
    const env = setup(t);
    env.conn.connect();
    const first = accept(env);
    assert.equal(first.sentOf("Hello")[0].resume, null, "a first join has no token");
    first.serverClose(code, "bye", code !== 1006);
    assert.equal(env.conn.state, "reconnecting", `close ${code}`);
    assert.equal(env.events.close.at(-1).policy, "Resume");
    env.tick(env.conn.status.retryInMs);
    const second = env.last();
    second.open();
    assert.deepEqual(second.sentOf("Hello")[0].resume, TOKEN, `close ${code}: resume with the token`);
    second.deliver(welcome({ resumed: true }));
    assert.equal(env.conn.state, "connected");
    assert.equal(env.conn.playerId, 7);
    t.mock.timers.reset();
  }
});

test("4002 forgets the token, rejoins at once as a new player, and says so", (t) => {
  const env = setup(t);
  env.conn.connect();
  accept(env);
  env.last().drop();
  env.tick(env.conn.status.retryInMs);
  const resuming = env.last();
  resuming.open();
  assert.deepEqual(resuming.sentOf("Hello")[0].resume, TOKEN);
  resuming.serverClose(4002, "resume token unknown or expired");
  assert.equal(env.conn.state, "reconnecting");
  assert.equal(env.conn.status.retryInMs, 0, "no back-off: the server is up and no token is left");
  assert.equal(env.conn.token, null);
  env.tick(0);
  const rejoin = env.last();
  assert.notEqual(rejoin, resuming);
  rejoin.open();
  assert.equal(rejoin.sentOf("Hello")[0].resume, null, "joins as a new player");
  const fresh = Uint8Array.from({ length: 16 }, (_, i) => i);
  rejoin.deliver(welcome({ playerId: 8, resumeToken: fresh }));
  assert.equal(env.conn.state, "connected");
  assert.equal(env.events.notice.length, 1);
  assert.match(env.events.notice[0], /no longer knows this session.*new player \(#8\)/);
  assert.deepEqual(env.conn.token, fresh, "the new token replaces the old");
});

test("4001 (room full) rejoins without a token but with back-off", (t) => {
  const env = setup(t);
  env.conn.connect();
  accept(env);
  env.last().serverClose(4001, "all rooms are full");
  assert.equal(env.conn.state, "reconnecting");
  assert.equal(env.conn.status.retryInMs, 500);
  env.tick(500);
  env.last().open();
  assert.equal(env.last().sentOf("Hello")[0].resume, null);
});

test("Stop codes stop retrying, say why, and forget the token", (t) => {
  const cases = {
    1000: /session ended/,
    1002: /protocol error/,
    1007: /could not decode/,
    1009: /too big/,
    4000: /version mismatch/,
    4003: /too fast/,
    4007: /taken over by another tab/,
  };
  for (const [code, why] of Object.entries(cases)) {
    const env = setup(t);
    env.conn.connect();
    accept(env);
    env.last().serverClose(Number(code), "server words");
    const s = env.conn.status;
    assert.equal(s.state, "stopped", `close ${code}`);
    assert.equal(s.code, Number(code));
    assert.match(s.reason, why);
    assert.match(s.reason, /server words/, "the server's reason is shown too");
    assert.equal(env.conn.token, null);
    const count = env.sockets.length;
    env.tick(120_000);
    assert.equal(env.sockets.length, count, `close ${code}: no retry`);
    t.mock.timers.reset();
  }
});

test("a first connection that fails is retried like any other", (t) => {
  const env = setup(t);
  env.conn.connect();
  env.last().drop();
  assert.equal(env.conn.state, "reconnecting");
  assert.equal(env.conn.status.attempt, 1);
});

test("the heartbeat pings at once and then every interval, and measures RTT", (t) => {
  const env = setup(t);
  env.conn.connect();
  const ws = accept(env);
  assert.equal(ws.sentOf("Ping").length, 1, "a Ping right after Welcome");
  env.tick(40);
  ws.deliver({ type: "Pong", t: ws.sentOf("Ping")[0].t, serverTimeMs: 1_700_000_000_000n });
  assert.equal(env.conn.rtt, 40);
  env.tick(2960);
  assert.equal(ws.sentOf("Ping").length, 2);
  // Answered every time: no timeout however long it runs.
  for (let i = 0; i < 10; i++) {
    ws.deliver({ type: "Pong", t: ws.sentOf("Ping").at(-1).t, serverTimeMs: 0n });
    env.tick(3000);
  }
  assert.equal(env.conn.state, "connected");
  assert.equal(ws.closedWith, null);
});

test("no Pong within the timeout: the socket is abandoned with a 3000 code and the player resumed", (t) => {
  const env = setup(t);
  env.conn.connect();
  const ws = accept(env);
  // The socket still says open and snapshots keep coming, but no Pong.
  for (let ms = 0; ms < 4900; ms += 100) {
    ws.deliver(snapshot(ms / 100, 0));
    env.tick(100);
  }
  assert.equal(env.conn.state, "connected");
  env.tick(100);
  assert.deepEqual(ws.closedWith?.code, CLIENT_CLOSE.HEARTBEAT_TIMEOUT);
  assert.ok(ws.closedWith.code >= 3000 && ws.closedWith.code <= 3999, "not 1000: keep the session");
  assert.equal(env.conn.state, "reconnecting");
  // Whatever the abandoned socket reports later is ignored.
  ws.serverClose(4007, "taken over");
  assert.equal(env.conn.state, "reconnecting");
  env.tick(env.conn.status.retryInMs);
  const next = env.last();
  assert.notEqual(next, ws);
  next.open();
  assert.deepEqual(next.sentOf("Hello")[0].resume, TOKEN);
});

test("a socket that never gets its Welcome is abandoned after the connect timeout", (t) => {
  const env = setup(t);
  env.conn.connect();
  const ws = env.last();
  ws.open();
  env.tick(9999);
  assert.equal(ws.closedWith, null);
  env.tick(1);
  assert.equal(ws.closedWith.code, CLIENT_CLOSE.CONNECT_TIMEOUT);
  assert.equal(env.conn.state, "reconnecting");
});

test("offline: no attempts while offline, one at once when back online", (t) => {
  const env = setup(t);
  env.conn.connect();
  accept(env);
  env.online.set(false);
  assert.equal(env.conn.state, "connected", "a live connection is not dropped for an offline event");
  env.last().drop();
  assert.equal(env.conn.state, "offline");
  const count = env.sockets.length;
  env.tick(120_000);
  assert.equal(env.sockets.length, count, "nothing is tried while offline");
  env.online.set(true);
  assert.equal(env.sockets.length, count + 1, "back online: try at once");
  env.last().open();
  assert.deepEqual(env.last().sentOf("Hello")[0].resume, TOKEN);
});

test("going offline while waiting to retry cancels the wait", (t) => {
  const env = setup(t);
  env.conn.connect();
  accept(env);
  env.last().drop();
  assert.equal(env.conn.state, "reconnecting");
  env.online.set(false);
  assert.equal(env.conn.state, "offline");
  const count = env.sockets.length;
  env.tick(60_000);
  assert.equal(env.sockets.length, count);
  env.online.set(true);
  assert.equal(env.sockets.length, count + 1);
  assert.equal(env.conn.state, "reconnecting");
});

test("connect() while offline waits for the network", (t) => {
  const env = setup(t);
  env.online.set(false);
  env.conn.connect();
  assert.equal(env.conn.state, "offline");
  assert.equal(env.sockets.length, 0);
  env.online.set(true);
  assert.equal(env.sockets.length, 1);
});

test("a page coming back into view retries at once, and probes a live connection", (t) => {
  const env = setup(t, { random: () => 0.99 });
  env.conn.connect();
  const ws = accept(env);
  assert.equal(ws.sentOf("Ping").length, 1);
  env.visible.set(false);
  env.visible.set(true);
  assert.equal(ws.sentOf("Ping").length, 2, "visible again: ping now");
  ws.drop();
  for (let i = 0; i < 4; i++) {
    env.tick(env.conn.status.retryInMs);
    env.last().drop();
  }
  assert.ok(env.conn.status.retryInMs > 10_000);
  const count = env.sockets.length;
  env.visible.set(false);
  assert.equal(env.sockets.length, count, "hiding does not retry");
  env.visible.set(true);
  assert.equal(env.sockets.length, count + 1, "showing retries now");
});

test("inputs: numbered by one, paced, repeated while moving, and held until the first snapshot", (t) => {
  // Pongs are not the subject here: a long timeout keeps the heartbeat quiet.
  const env = setup(t, { conn: { pongTimeoutMs: 600_000 } });
  env.conn.connect();
  const ws = accept(env);
  env.conn.setInput(127, 0);
  assert.equal(ws.sentOf("Input").length, 0, "no input before the first snapshot");
  ws.deliver(snapshot(1, 0));
  assert.deepEqual(ws.sentOf("Input"), [{ type: "Input", seq: 1, dx: 127, dy: 0 }]);
  // Quick changes are paced at one per 34 ms; the latest wins.
  env.tick(10);
  env.conn.setInput(0, 127);
  env.conn.setInput(-127, 127);
  assert.equal(ws.sentOf("Input").length, 1);
  env.tick(24);
  assert.deepEqual(ws.sentOf("Input")[1], { type: "Input", seq: 2, dx: -127, dy: 127 });
  // While moving, the input is repeated every 250 ms.
  env.tick(250);
  assert.deepEqual(ws.sentOf("Input")[2], { type: "Input", seq: 3, dx: -127, dy: 127 });
  // Stopping sends one zero input, and then nothing.
  env.conn.setInput(0, 0);
  env.tick(34);
  assert.deepEqual(ws.sentOf("Input")[3], { type: "Input", seq: 4, dx: 0, dy: 0 });
  env.tick(5000);
  assert.equal(ws.sentOf("Input").length, 4);
  // Out-of-range values are clamped to the documented range.
  env.conn.setInput(500, -500);
  env.tick(34);
  assert.deepEqual(ws.sentOf("Input")[4], { type: "Input", seq: 5, dx: 127, dy: -127 });
  assert.equal(env.conn.inputSeq, 5);
});

test("after a resume, inputs continue above the ack and the held direction is sent again", (t) => {
  const env = setup(t);
  env.conn.connect();
  let ws = accept(env);
  ws.deliver(snapshot(1, 0));
  env.conn.setInput(127, 0);
  assert.equal(env.conn.inputSeq, 1);
  ws.drop();
  assert.equal(env.conn.inputSeq, 1);
  env.tick(env.conn.status.retryInMs);
  ws = accept(env, welcome({ resumed: true }));
  // The server applied more than this client remembers (say, a reload):
  // numbering continues above the ack.
  ws.deliver(snapshot(100, 40));
  assert.deepEqual(ws.sentOf("Input"), [{ type: "Input", seq: 41, dx: 127, dy: 0 }]);
});

test("a new player's inputs start again from 1", (t) => {
  const env = setup(t);
  env.conn.connect();
  let ws = accept(env);
  ws.deliver(snapshot(1, 0));
  env.conn.setInput(0, 127);
  env.tick(1000);
  assert.ok(env.conn.inputSeq > 1);
  ws.serverClose(4002, "");
  env.tick(0);
  ws = accept(env, welcome({ playerId: 9 }));
  ws.deliver(snapshot(5, 0));
  assert.equal(ws.sentOf("Input")[0].seq, 1);
});

test("leave() closes with 1000, forgets the token and never retries", (t) => {
  const env = setup(t);
  env.conn.connect();
  const ws = accept(env);
  env.conn.leave();
  assert.deepEqual(ws.closedWith, { code: 1000, reason: "leave" });
  assert.equal(env.conn.state, "stopped");
  assert.match(env.conn.status.reason, /left/);
  assert.equal(env.conn.token, null);
  env.tick(120_000);
  assert.equal(env.sockets.length, 1);
  // Joining again is a new player.
  env.conn.connect();
  env.last().open();
  assert.equal(env.last().sentOf("Hello")[0].resume, null);
});

test("the token is stored per server URL, so a reload resumes", (t) => {
  const storage = memoryStorage();
  const env = setup(t, { storage });
  env.conn.connect();
  accept(env);
  assert.equal(storage.getItem(`arena.resumeToken:${URL_}`), tokenToHex(TOKEN));
  env.conn.dispose();
  assert.equal(env.last().closedWith.code, CLIENT_CLOSE.DISPOSED, "a reload does not leave");
  t.mock.timers.reset();
  const reloaded = setup(t, { storage });
  reloaded.conn.connect();
  reloaded.last().open();
  assert.deepEqual(reloaded.last().sentOf("Hello")[0].resume, TOKEN);
  // Another server gets no token.
  t.mock.timers.reset();
  const other = setup(t, { storage, conn: { url: "ws://elsewhere.test/ws" } });
  other.conn.connect();
  other.last().open();
  assert.equal(other.last().sentOf("Hello")[0].resume, null);
});

test("an undecodable message from the server stops the client with a reason", (t) => {
  const env = setup(t);
  env.conn.connect();
  const ws = accept(env);
  ws.onmessage({ data: new Uint8Array([9]).buffer });
  assert.equal(env.conn.state, "stopped");
  assert.equal(ws.closedWith.code, CLIENT_CLOSE.UNDECODABLE);
  assert.match(env.conn.status.reason, /cannot read/);
  env.tick(120_000);
  assert.equal(env.sockets.length, 1);
});

test("every status change is reported once, in order", (t) => {
  const env = setup(t);
  env.conn.connect();
  env.last().drop();
  env.tick(env.conn.status.retryInMs);
  accept(env);
  env.last().serverClose(4007, "");
  assert.deepEqual(
    env.events.status.map((s) => s.state),
    ["connecting", "reconnecting", "reconnecting", "connected", "stopped"],
  );
  assert.deepEqual(env.conn.log.map((s) => s.state), env.events.status.map((s) => s.state));
});
