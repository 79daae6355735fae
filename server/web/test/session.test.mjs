// Unit tests of Session (session.js) with a fake WebSocket class and
// node:test's fake timers (fake-server.mjs): the back-off schedule and its
// reset, the retry policy of every close code (Resume, Rejoin with the
// page's room request, Stop with the reason), the heartbeat, resume with
// the token and the last event, the delivery of events once and in order
// with coalesced acknowledgements, the numbering of game messages,
// offline/online and visibility handling, leaving, storage, the badge, and
// a cluster's redirects (the entry URL, the home URL, the fallback from a
// home that is gone, 4020 and 4021, the bound on redirects).
//
// Time moves only through tick(), so nothing here depends on the
// machine's speed. Not for the codec (envelope.test.mjs) or real sockets
// and browsers (e2e/).

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CLIENT_CLOSE,
  CLOSE_CODES,
  HOME_ATTEMPTS,
  HOME_RESTART_PATIENCE_MS,
  MAX_REDIRECTS,
  Session,
  backoffCap,
  backoffDelay,
  badgeText,
  bindBadge,
  memoryStorage,
  webSocketUrl,
} from "../session.js";
import { ROOM, TOKEN, URL_, accept, eventMsg, setup, stateMsg, welcome } from "./fake-server.mjs";

const STORAGE_KEY = `session:${URL_}`;

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
  env.session.connect();
  assert.equal(env.session.state, "connecting");
  const delays = [];
  for (let attempt = 1; attempt <= 7; attempt++) {
    env.last().drop();
    const s = env.session.status;
    assert.equal(s.state, "reconnecting");
    assert.equal(s.attempt, attempt);
    delays.push(s.retryInMs);
    assert.equal(s.retryCapMs, backoffCap(attempt, 1000, 30000));
    const before = env.sockets.length;
    env.tick(s.retryInMs - 1);
    assert.equal(env.sockets.length, before, `attempt ${attempt} must wait its delay`);
    env.tick(1);
    assert.equal(env.sockets.length, before + 1, `attempt ${attempt} runs after its delay`);
    assert.equal(env.session.status.retryInMs, null, "trying now");
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000]);
});

test("full jitter: the delay is anywhere between zero and the ceiling", (t) => {
  for (const r of [0, 0.1, 0.999]) {
    const env = setup(t, { random: () => r });
    env.session.connect();
    env.last().drop();
    env.tick(env.session.status.retryInMs);
    env.last().drop();
    assert.equal(env.session.status.retryInMs, r * 2000);
    t.mock.timers.reset();
  }
});

test("the back-off resets after a successful connection", (t) => {
  const env = setup(t);
  env.session.connect();
  for (let i = 0; i < 4; i++) {
    env.last().drop();
    env.tick(env.session.status.retryInMs);
  }
  assert.equal(env.session.status.attempt, 4);
  accept(env);
  assert.equal(env.session.state, "connected");
  assert.equal(env.session.status.attempt, 0);
  env.last().drop();
  assert.equal(env.session.status.attempt, 1);
  assert.equal(env.session.status.retryCapMs, 1000);
});

test("the first Hello carries the page's room request and no resume", (t) => {
  const room = { type: "Create", roomType: "four", options: [["speed", "fast"]], private: true };
  const env = setup(t, { session: { room } });
  env.session.connect();
  const ws = env.last();
  ws.open();
  assert.deepEqual(ws.sentOf("Hello"), [{ type: "Hello", version: 2, resume: null, room }]);
  ws.deliver(welcome({ inviteCode: "K7M2XQ9P", roomId: 12 }));
  assert.equal(env.session.inviteCode, "K7M2XQ9P");
  assert.equal(env.session.roomId, 12);
  assert.equal(env.session.playerId, 7);
  assert.deepEqual(env.events.welcome[0].game, Uint8Array.of(7, 6), "the game's welcome bytes reach the page");
});

test("a Session needs a url and a room request it can encode", () => {
  assert.throws(() => new Session({ room: ROOM }), TypeError);
  assert.throws(() => new Session({ url: URL_ }), TypeError);
  assert.throws(() => new Session({ url: URL_, room: { type: "JoinById", roomId: -1 } }), RangeError);
});

test("Resume codes, 1006 and this client's own codes reconnect with the token and the last event", (t) => {
  const resumeCodes = Object.entries(CLOSE_CODES)
    .filter(([, c]) => c.retry === "Resume")
    .map(([code]) => Number(code));
  assert.deepEqual(resumeCodes, [1001, 1011, 1012, 4004, 4005, 4006, 4008]);
  for (const code of [...resumeCodes, 1006, 1005, 3999]) {
    const env = setup(t);
    env.session.connect();
    const first = accept(env);
    first.deliver(eventMsg(1));
    first.deliver(eventMsg(2));
    first.serverClose(code, "bye", code !== 1006);
    assert.equal(env.session.state, "reconnecting", `close ${code}`);
    assert.equal(env.events.close.at(-1).policy, "Resume");
    env.tick(env.session.status.retryInMs);
    const second = env.last();
    second.open();
    assert.deepEqual(second.sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 2 }, `close ${code}`);
    second.deliver(welcome({ resumed: true }));
    assert.equal(env.session.state, "connected");
    assert.equal(env.session.playerId, 7);
    t.mock.timers.reset();
  }
});

test("4002 forgets the token, rejoins at once with the page's room request, and says so", (t) => {
  const room = { type: "JoinByCode", code: "K7M2XQ9P" };
  const env = setup(t, { session: { room } });
  env.session.connect();
  const first = accept(env);
  first.deliver(eventMsg(1));
  first.drop();
  env.tick(env.session.status.retryInMs);
  const resuming = env.last();
  resuming.open();
  assert.deepEqual(resuming.sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 1 });
  resuming.serverClose(4002, "resume token unknown or expired");
  assert.equal(env.session.state, "reconnecting");
  assert.equal(env.session.status.retryInMs, 0, "no back-off: the server is up and no token is left");
  assert.equal(env.session.token, null);
  assert.equal(env.session.lastEvent, 0);
  env.tick(0);
  const rejoin = env.last();
  assert.notEqual(rejoin, resuming);
  rejoin.open();
  assert.deepEqual(rejoin.sentOf("Hello")[0], { type: "Hello", version: 2, resume: null, room }, "the same request again");
  const fresh = Uint8Array.from({ length: 16 }, (_, i) => i);
  rejoin.deliver(welcome({ playerId: 8, resumeToken: fresh }));
  assert.equal(env.session.state, "connected");
  assert.equal(env.events.notice.length, 1);
  assert.match(env.events.notice[0], /no longer knows this session.*new player \(#8\)/);
  assert.deepEqual(env.session.token, fresh, "the new token replaces the old");
  // The new session's events start from 1 again.
  rejoin.deliver(eventMsg(1, Uint8Array.of(42)));
  assert.deepEqual(env.events.event.at(-1), { type: "Event", seq: 1, data: Uint8Array.of(42) });
});

test("4001 and 4017 rejoin as a new player, with back-off", (t) => {
  const rejoinCodes = Object.entries(CLOSE_CODES)
    .filter(([, c]) => c.retry === "Rejoin")
    .map(([code]) => Number(code));
  assert.deepEqual(rejoinCodes, [4001, 4002, 4017, 4020, 4021], "4002, 4020 and 4021 have tests of their own");
  for (const code of [4001, 4017]) {
    const env = setup(t);
    env.session.connect();
    const ws = accept(env);
    ws.deliver(eventMsg(1));
    ws.serverClose(code, "");
    assert.equal(env.session.state, "reconnecting");
    assert.equal(env.events.close.at(-1).policy, "Rejoin");
    assert.equal(env.session.status.retryInMs, 500, `close ${code} backs off`);
    assert.equal(env.session.token, null);
    env.tick(499);
    assert.equal(env.sockets.length, 1);
    env.tick(1);
    env.last().open();
    assert.deepEqual(env.last().sentOf("Hello")[0].resume, null);
    assert.deepEqual(env.last().sentOf("Hello")[0].room, ROOM);
    t.mock.timers.reset();
  }
});

test("Stop codes stop retrying, say why with the server's words, and forget the token", (t) => {
  const cases = {
    1000: /session ended/,
    1002: /protocol error/,
    1003: /text instead of binary/,
    1007: /could not decode/,
    1008: /policy/,
    1009: /too big/,
    4000: /version mismatch/,
    4003: /too fast/,
    4007: /taken over by another tab/,
    4009: /does not host that game/,
    4010: /No open room/,
    4011: /no new players/,
    4012: /room is full/,
    4013: /private/,
    4014: /^The game did not let you in: server words$/,
    4015: /^The game removed you: server words$/,
    4016: /^The room has ended: server words$/,
    4018: /Too many invite-code attempts/,
    4019: /another server without saying where/,
  };
  const stopCodes = Object.entries(CLOSE_CODES)
    .filter(([, c]) => c.retry === "Stop")
    .map(([code]) => code);
  assert.deepEqual(Object.keys(cases), stopCodes, "every Stop code is tried");
  for (const [code, why] of Object.entries(cases)) {
    const env = setup(t);
    env.session.connect();
    accept(env);
    env.last().serverClose(Number(code), "server words");
    const s = env.session.status;
    assert.equal(s.state, "stopped", `close ${code}`);
    assert.equal(s.code, Number(code));
    assert.match(s.reason, why);
    assert.match(s.reason, /server words/, "the server's reason is shown too");
    assert.equal(env.session.token, null);
    assert.equal(env.storage.getItem(STORAGE_KEY), null);
    const count = env.sockets.length;
    env.tick(120_000);
    assert.equal(env.sockets.length, count, `close ${code}: no retry`);
    t.mock.timers.reset();
  }
});

test("a refusal at the door (join by code, no such room) stops before any Welcome", (t) => {
  const env = setup(t, { session: { room: { type: "JoinByCode", code: "ZZZZ2222" } } });
  env.session.connect();
  env.last().open();
  env.last().serverClose(4010, "no open room has that invite code");
  assert.equal(env.session.state, "stopped");
  assert.match(env.session.status.reason, /No open room has that id or invite code/);
  assert.equal(env.session.playerId, null);
});

test("a first connection that fails is retried like any other", (t) => {
  const env = setup(t);
  env.session.connect();
  env.last().drop();
  assert.equal(env.session.state, "reconnecting");
  assert.equal(env.session.status.attempt, 1);
});

test("the heartbeat pings at once and then every interval, and measures RTT", (t) => {
  const env = setup(t);
  env.session.connect();
  const ws = accept(env);
  assert.equal(ws.sentOf("Ping").length, 1, "a Ping right after Welcome");
  env.tick(40);
  ws.deliver({ type: "Pong", t: ws.sentOf("Ping")[0].t, serverTimeMs: 1_700_000_000_000n });
  assert.equal(env.session.rtt, 40);
  env.tick(2960);
  assert.equal(ws.sentOf("Ping").length, 2);
  // Answered every time: no timeout however long it runs.
  for (let i = 0; i < 10; i++) {
    ws.deliver({ type: "Pong", t: ws.sentOf("Ping").at(-1).t, serverTimeMs: 0n });
    env.tick(3000);
  }
  assert.equal(env.session.state, "connected");
  assert.equal(ws.closedWith, null);
});

test("no Pong within the timeout: the socket is abandoned with a 3000 code and the player resumed", (t) => {
  const env = setup(t);
  env.session.connect();
  const ws = accept(env);
  // The socket still says open and states keep coming, but no Pong.
  for (let ms = 0; ms < 4900; ms += 100) {
    ws.deliver(stateMsg(ms / 100, 0));
    env.tick(100);
  }
  assert.equal(env.session.state, "connected");
  env.tick(100);
  assert.equal(ws.closedWith?.code, CLIENT_CLOSE.HEARTBEAT_TIMEOUT);
  assert.ok(ws.closedWith.code >= 3000 && ws.closedWith.code <= 3999, "not 1000: keep the session");
  assert.equal(env.session.state, "reconnecting");
  // Whatever the abandoned socket reports later is ignored.
  ws.serverClose(4007, "taken over");
  assert.equal(env.session.state, "reconnecting");
  env.tick(env.session.status.retryInMs);
  const next = env.last();
  assert.notEqual(next, ws);
  next.open();
  assert.deepEqual(next.sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 0 });
});

test("a socket that never gets its Welcome is abandoned after the connect timeout", (t) => {
  const env = setup(t);
  env.session.connect();
  const ws = env.last();
  ws.open();
  env.tick(9999);
  assert.equal(ws.closedWith, null);
  env.tick(1);
  assert.equal(ws.closedWith.code, CLIENT_CLOSE.CONNECT_TIMEOUT);
  assert.equal(env.session.state, "reconnecting");
});

test("events reach the page once and in order, and are acknowledged at most every 100 ms", (t) => {
  const env = setup(t, { session: { pongTimeoutMs: 600_000 } });
  env.session.connect();
  const ws = accept(env);
  ws.deliver(eventMsg(1));
  ws.deliver(eventMsg(2));
  ws.deliver(eventMsg(2));
  ws.deliver(eventMsg(1));
  assert.deepEqual(env.events.event.map((e) => e.seq), [1, 2], "repeats are not delivered twice");
  assert.equal(ws.sentOf("EventAck").length, 0, "acks wait to be coalesced");
  env.tick(99);
  assert.equal(ws.sentOf("EventAck").length, 0);
  env.tick(1);
  assert.deepEqual(ws.sentOf("EventAck"), [{ type: "EventAck", upto: 2 }]);
  // A steady stream: one ack per 100 ms, covering everything before it.
  for (let seq = 3; seq <= 30; seq++) {
    ws.deliver(eventMsg(seq));
    env.tick(10);
  }
  const acks = ws.sentOf("EventAck").map((a) => a.upto);
  assert.ok(acks.length <= 4, `coalesced: ${acks}`);
  env.tick(100);
  assert.equal(ws.sentOf("EventAck").at(-1).upto, 30);
  assert.deepEqual(
    ws.sentOf("EventAck").map((a) => a.upto),
    [...ws.sentOf("EventAck").map((a) => a.upto)].sort((a, b) => a - b),
    "acks only move forward",
  );
  // Nothing new: no ack.
  const count = ws.sentOf("EventAck").length;
  env.tick(1000);
  assert.equal(ws.sentOf("EventAck").length, count);
  assert.deepEqual(env.events.event.map((e) => e.seq), Array.from({ length: 30 }, (_, i) => i + 1));
});

test("a burst of events is acknowledged at once, before the server's backlog bound", (t) => {
  const env = setup(t, { session: { pongTimeoutMs: 600_000 } });
  env.session.connect();
  const ws = accept(env);
  for (let seq = 1; seq <= 600; seq++) ws.deliver(eventMsg(seq));
  assert.deepEqual(ws.sentOf("EventAck").map((a) => a.upto), [256, 512]);
  env.tick(100);
  assert.equal(ws.sentOf("EventAck").at(-1).upto, 600);
});

test("the last event processed is stored, and a resume replays only the later ones", (t) => {
  const env = setup(t);
  env.session.connect();
  let ws = accept(env);
  for (let seq = 1; seq <= 3; seq++) ws.deliver(eventMsg(seq));
  assert.deepEqual(JSON.parse(env.storage.getItem(STORAGE_KEY)), {
    token: "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
    lastEvent: 3,
    home: URL_,
  });
  // Dropped before any ack went out: the server still holds 1 to 3, and
  // replays what follows the last event the resume names.
  ws.drop();
  env.tick(env.session.status.retryInMs);
  ws = env.last();
  ws.open();
  assert.deepEqual(ws.sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 3 });
  ws.deliver(welcome({ resumed: true }));
  ws.deliver(eventMsg(4));
  ws.deliver(eventMsg(5));
  assert.deepEqual(env.events.event.map((e) => e.seq), [1, 2, 3, 4, 5]);
  env.tick(100);
  assert.deepEqual(ws.sentOf("EventAck"), [{ type: "EventAck", upto: 5 }], "the resume acknowledged 1 to 3");
});

test("an event whose predecessor is missing drops the connection and resumes from the last one", (t) => {
  const env = setup(t);
  env.session.connect();
  const ws = accept(env);
  ws.deliver(eventMsg(1));
  ws.deliver(eventMsg(3));
  assert.deepEqual(env.events.event.map((e) => e.seq), [1], "3 is not delivered out of order");
  assert.equal(ws.closedWith.code, CLIENT_CLOSE.EVENT_GAP);
  assert.equal(env.session.state, "reconnecting");
  env.tick(env.session.status.retryInMs);
  env.last().open();
  assert.deepEqual(env.last().sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 1 });
});

test("a reload resumes with the stored token and last event; another page or server does not", (t) => {
  const storage = memoryStorage();
  const env = setup(t, { storage, session: { storageKey: "four:quick" } });
  env.session.connect();
  const ws = accept(env);
  ws.deliver(eventMsg(1));
  ws.deliver(eventMsg(2));
  env.session.dispose();
  assert.equal(ws.closedWith.code, CLIENT_CLOSE.DISPOSED, "a reload does not leave");
  assert.equal(env.session.state, "idle");
  t.mock.timers.reset();
  const reloaded = setup(t, { storage, session: { storageKey: "four:quick" } });
  assert.equal(reloaded.session.lastEvent, 2);
  reloaded.session.connect();
  reloaded.last().open();
  assert.deepEqual(reloaded.last().sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 2 });
  for (const other of [{ storageKey: "arena:quick" }, { storageKey: "four:quick", url: "ws://elsewhere.test/ws" }]) {
    t.mock.timers.reset();
    const env2 = setup(t, { storage, session: other });
    env2.session.connect();
    env2.last().open();
    assert.equal(env2.last().sentOf("Hello")[0].resume, null, JSON.stringify(other));
  }
});

test("storage that refuses writes still resumes after a drop, from memory", (t) => {
  const storage = {
    getItem: () => null,
    setItem: () => {
      throw new Error("QuotaExceededError");
    },
    removeItem: () => {},
  };
  const env = setup(t, { storage });
  env.session.connect();
  const ws = accept(env);
  ws.deliver(eventMsg(1));
  ws.drop();
  env.tick(env.session.status.retryInMs);
  env.last().open();
  assert.deepEqual(env.last().sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 1 });
});

test("game messages: numbered from 1, refused without a session, and continued above a resume's ack", (t) => {
  const env = setup(t);
  assert.equal(env.session.send(Uint8Array.of(1)), null, "nothing to send on yet");
  env.session.connect();
  let ws = accept(env);
  assert.equal(env.session.canSend, true);
  assert.equal(env.session.send(Uint8Array.of(0, 3)), 1);
  assert.equal(env.session.send(Uint8Array.of(1)), 2);
  assert.deepEqual(ws.sentOf("Game"), [
    { type: "Game", seq: 1, data: Uint8Array.of(0, 3) },
    { type: "Game", seq: 2, data: Uint8Array.of(1) },
  ]);
  assert.throws(() => env.session.send([1]), TypeError, "game bytes are a Uint8Array");
  ws.drop();
  assert.equal(env.session.send(Uint8Array.of(9)), null, "not while reconnecting");
  env.tick(env.session.status.retryInMs);
  ws = accept(env, welcome({ resumed: true }));
  assert.equal(env.session.canSend, false, "a resumed session waits for its first state");
  assert.equal(env.session.send(Uint8Array.of(9)), null);
  ws.deliver(stateMsg(50, 7));
  assert.equal(env.session.send(Uint8Array.of(9)), 8, "above the server's ack");
  assert.deepEqual(env.events.state.at(-1), stateMsg(50, 7));
  assert.deepEqual(env.session.lastState, stateMsg(50, 7));
});

test("offline: no attempts while offline, one at once when back online", (t) => {
  const env = setup(t);
  env.session.connect();
  accept(env);
  env.online.set(false);
  assert.equal(env.session.state, "connected", "a live connection is not dropped for an offline event");
  env.last().drop();
  assert.equal(env.session.state, "offline");
  const count = env.sockets.length;
  env.tick(120_000);
  assert.equal(env.sockets.length, count, "nothing is tried while offline");
  env.online.set(true);
  assert.equal(env.sockets.length, count + 1, "back online: try at once");
  env.last().open();
  assert.deepEqual(env.last().sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 0 });
});

test("going offline while waiting to retry cancels the wait", (t) => {
  const env = setup(t);
  env.session.connect();
  accept(env);
  env.last().drop();
  assert.equal(env.session.state, "reconnecting");
  env.online.set(false);
  assert.equal(env.session.state, "offline");
  const count = env.sockets.length;
  env.tick(60_000);
  assert.equal(env.sockets.length, count);
  env.online.set(true);
  assert.equal(env.sockets.length, count + 1);
  assert.equal(env.session.state, "reconnecting");
});

test("connect() while offline waits for the network", (t) => {
  const env = setup(t);
  env.online.set(false);
  env.session.connect();
  assert.equal(env.session.state, "offline");
  assert.equal(env.sockets.length, 0);
  env.online.set(true);
  assert.equal(env.sockets.length, 1);
});

test("a page coming back into view retries at once, and probes a live connection", (t) => {
  const env = setup(t, { random: () => 0.99 });
  env.session.connect();
  const ws = accept(env);
  assert.equal(ws.sentOf("Ping").length, 1);
  env.visible.set(false);
  env.visible.set(true);
  assert.equal(ws.sentOf("Ping").length, 2, "visible again: ping now");
  ws.drop();
  for (let i = 0; i < 4; i++) {
    env.tick(env.session.status.retryInMs);
    env.last().drop();
  }
  assert.ok(env.session.status.retryInMs > 10_000);
  const count = env.sockets.length;
  env.visible.set(false);
  assert.equal(env.sockets.length, count, "hiding does not retry");
  env.visible.set(true);
  assert.equal(env.sockets.length, count + 1, "showing retries now");
});

test("leave() says Leave, closes with 1000, forgets the token and never retries", (t) => {
  const env = setup(t);
  env.session.connect();
  const ws = accept(env);
  ws.deliver(eventMsg(1));
  env.session.leave();
  assert.deepEqual(ws.sentOf("Leave"), [{ type: "Leave" }]);
  assert.deepEqual(ws.closedWith, { code: 1000, reason: "leave" });
  assert.equal(env.session.state, "stopped");
  assert.match(env.session.status.reason, /left/);
  assert.equal(env.session.token, null);
  assert.equal(env.session.lastEvent, 0);
  env.tick(120_000);
  assert.equal(env.sockets.length, 1);
  // Joining again is a new player.
  env.session.connect();
  env.last().open();
  assert.equal(env.last().sentOf("Hello")[0].resume, null);
});

test("an undecodable message from the server stops the client with a reason", (t) => {
  const env = setup(t);
  env.session.connect();
  const ws = accept(env);
  ws.onmessage({ data: new Uint8Array([9]).buffer });
  assert.equal(env.session.state, "stopped");
  assert.equal(ws.closedWith.code, CLIENT_CLOSE.UNDECODABLE);
  assert.match(env.session.status.reason, /cannot read/);
  env.tick(120_000);
  assert.equal(env.sockets.length, 1);
});

test("a State before Welcome is a broken server", (t) => {
  const env = setup(t);
  env.session.connect();
  const ws = env.last();
  ws.open();
  ws.deliver(stateMsg(1, 0));
  assert.equal(env.session.state, "stopped");
  assert.match(env.session.status.reason, /a State before Welcome/);
});

test("every status change is reported once, in order", (t) => {
  const env = setup(t);
  env.session.connect();
  env.last().drop();
  env.tick(env.session.status.retryInMs);
  accept(env);
  env.last().serverClose(4007, "");
  assert.deepEqual(
    env.events.status.map((s) => s.state),
    ["connecting", "reconnecting", "reconnecting", "connected", "stopped"],
  );
  assert.deepEqual(env.session.log.map((s) => s.state), env.events.status.map((s) => s.state));
});

test("the badge follows the session: words for people, the state for the style sheet", (t) => {
  const env = setup(t);
  const badge = { textContent: "", dataset: {} };
  const off = bindBadge(env.session, badge);
  assert.deepEqual([badge.textContent, badge.dataset.state], ["Not connected", "idle"]);
  env.session.connect();
  assert.deepEqual([badge.textContent, badge.dataset.state], ["Connecting…", "connecting"]);
  accept(env);
  assert.deepEqual([badge.textContent, badge.dataset.state], ["Connected", "connected"]);
  env.last().drop();
  assert.equal(badge.textContent, "Reconnecting (attempt 1, next try in 0.5 s)");
  env.tick(500);
  assert.equal(badge.textContent, "Reconnecting (attempt 1, trying now…)");
  env.online.set(false);
  env.last().drop();
  assert.deepEqual([badge.textContent, badge.dataset.state], ["Offline: waiting for the network", "offline"]);
  off();
  env.online.set(true);
  assert.equal(badge.dataset.state, "offline", "unbound");
  assert.equal(badgeText({ state: "stopped", reason: "You left the game." }), "Stopped: You left the game.");
  assert.equal(badgeText({ state: "reconnecting", attempt: 3, retryInMs: 12_400 }), "Reconnecting (attempt 3, next try in 12 s)");
});

// ---- clusters: redirects, the entry and the home (PROTOCOL.md 2.11) ----

/** Another node of the cluster, and a third. */
const NODE_B = "ws://node-b.test/ws";
const NODE_C = "ws://node-c.test/ws";

/** A seat ticket, distinct from the resume token. */
const TICKET = Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i);

function redirect(url = NODE_B, ticket = TICKET) {
  return { type: "Redirect", url, ticket };
}

/**
 * Connects through the entry, which redirects to NODE_B, whose socket
 * opens: returns the entry's socket and B's (no answer from B yet).
 */
function redirectedToB(env) {
  env.session.connect();
  const entry = env.last();
  entry.open();
  entry.deliver(redirect());
  const b = env.last();
  b.open();
  return { entry, b };
}

/** As redirectedToB, and B welcomes. */
function joinViaRedirect(env, w = welcome()) {
  const sockets = redirectedToB(env);
  sockets.b.deliver(w);
  return sockets;
}

test("a Redirect is followed at once with its ticket, and the node that says Welcome is the home", (t) => {
  const room = { type: "JoinByCode", code: "K7M2XQ9P" };
  const env = setup(t, { session: { room } });
  const redirects = [];
  env.session.on("redirect", (r) => redirects.push(r));
  env.session.connect();
  const entry = env.last();
  assert.equal(entry.url, URL_, "a join starts at the entry");
  entry.open();
  assert.deepEqual(entry.sentOf("Hello"), [{ type: "Hello", version: 2, resume: null, room }]);
  entry.deliver(redirect());
  assert.equal(env.sockets.length, 2, "followed at once, without waiting for a timer");
  const b = env.last();
  assert.equal(b.url, NODE_B);
  assert.deepEqual(entry.closedWith, { code: CLIENT_CLOSE.REDIRECTED, reason: "redirected" }, "the entry's socket is let go, not left");
  // The entry's 4019 arrives after the client moved on: it changes nothing.
  entry.serverClose(4019, "redirected");
  assert.equal(env.session.state, "connecting");
  assert.equal(env.events.close.length, 0, "the abandoned socket's close is not reported");
  b.open();
  assert.deepEqual(b.sentOf("Hello"), [
    { type: "Hello", version: 2, resume: null, room: { type: "Reserved", ticket: TICKET } },
  ]);
  b.deliver(welcome({ roomId: 40 }));
  assert.equal(env.session.state, "connected");
  assert.equal(env.session.roomId, 40);
  assert.deepEqual(redirects, [{ url: NODE_B, hop: 1 }]);
  assert.deepEqual(env.events.status.map((s) => s.state), ["connecting", "connected"], "a redirect is part of connecting");
  assert.equal(env.session.entryUrl, URL_);
  assert.equal(env.session.homeUrl, NODE_B);
  assert.deepEqual(JSON.parse(env.storage.getItem(STORAGE_KEY)), {
    token: "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
    lastEvent: 0,
    home: NODE_B,
  });
});

test("resumes go to the home, after a drop and after a reload", (t) => {
  const storage = memoryStorage();
  const env = setup(t, { storage });
  const { b } = joinViaRedirect(env);
  b.deliver(eventMsg(1));
  b.drop();
  assert.equal(env.session.state, "reconnecting");
  env.tick(env.session.status.retryInMs);
  const again = env.last();
  assert.equal(again.url, NODE_B, "not the entry");
  again.open();
  assert.deepEqual(again.sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 1 });
  again.deliver(welcome({ resumed: true }));
  assert.equal(env.session.homeUrl, NODE_B, "still home");
  env.session.dispose();
  t.mock.timers.reset();
  const reloaded = setup(t, { storage });
  reloaded.session.connect();
  assert.equal(reloaded.last().url, NODE_B, "the reloaded page resumes at the home it stored");
  reloaded.last().open();
  assert.deepEqual(reloaded.last().sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 1 });
});

test("a home that cannot be reached 3 times in a row is given up: a new player at the entry, with the page's request", (t) => {
  assert.equal(HOME_ATTEMPTS, 3);
  const room = { type: "JoinByCode", code: "K7M2XQ9P" };
  const env = setup(t, { session: { room } });
  const { b } = joinViaRedirect(env);
  b.deliver(eventMsg(1));
  b.drop();
  // Two attempts refused, then one that opens (the node is alive: it only
  // said it is full), then two refused: the streak was broken, so the
  // token is kept.
  const attempt = () => {
    env.tick(env.session.status.retryInMs);
    const ws = env.last();
    assert.equal(ws.url, NODE_B, "resuming at the home");
    return ws;
  };
  attempt().drop();
  attempt().drop();
  const alive = attempt();
  alive.open();
  alive.serverClose(4006, "server full");
  attempt().drop();
  attempt().drop();
  assert.deepEqual(env.session.token, TOKEN, "2 failures after one that opened are not 3 in a row");
  assert.equal(env.session.state, "reconnecting");
  attempt().drop();
  // The third in a row: the home is gone.
  assert.equal(env.session.token, null);
  assert.equal(env.session.homeUrl, null);
  assert.equal(env.storage.getItem(STORAGE_KEY), null);
  assert.equal(env.session.status.retryInMs, 0, "at once: the entry is another server");
  env.tick(0);
  const rejoin = env.last();
  assert.equal(rejoin.url, URL_);
  rejoin.open();
  assert.deepEqual(rejoin.sentOf("Hello")[0], { type: "Hello", version: 2, resume: null, room });
  rejoin.deliver(welcome({ playerId: 9, resumeToken: Uint8Array.from({ length: 16 }, () => 1) }));
  assert.equal(env.session.state, "connected");
  assert.equal(env.session.homeUrl, URL_, "welcomed at the entry this time");
  assert.match(env.events.notice.at(-1), /cannot be reached.*new player \(#9\)/);
});

test("a home that closed with 1012 is waited for through its restart, then given up only after the patience", (t) => {
  assert.equal(HOME_RESTART_PATIENCE_MS, 15_000);
  // Waits of a quarter of each back-off ceiling: 0.25, 0.5, 1, 2 s...
  const env = setup(t, { random: () => 0.25 });
  const { b } = joinViaRedirect(env);
  b.serverClose(1012, "service restart");
  const started = Date.now();
  // Refused five times in a row: still the same session, at the home.
  for (let i = 0; i < HOME_ATTEMPTS + 2; i++) {
    env.tick(env.session.status.retryInMs);
    const ws = env.last();
    assert.equal(ws.url, NODE_B);
    assert.deepEqual(env.session.token, TOKEN, "waiting for the home to come back");
    ws.drop();
  }
  assert.ok(Date.now() - started < HOME_RESTART_PATIENCE_MS, "within the patience");
  // Back: the session resumes at the home.
  env.tick(env.session.status.retryInMs);
  const back = env.last();
  assert.equal(back.url, NODE_B);
  back.open();
  assert.deepEqual(back.sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 0 });
  back.deliver(welcome({ resumed: true }));
  assert.equal(env.session.homeUrl, NODE_B);
  // A second restart that never ends: given up once the patience is over.
  back.serverClose(1012, "service restart");
  const again = Date.now();
  while (env.session.token !== null) {
    env.tick(env.session.status.retryInMs);
    if (env.session.token !== null) env.last().drop();
  }
  assert.ok(Date.now() - again >= HOME_RESTART_PATIENCE_MS, "not before the patience");
  env.tick(0);
  assert.equal(env.last().url, URL_, "a new player at the entry");
});

test("an attempt at the home that never opens in time counts as unreachable too", (t) => {
  const env = setup(t);
  const { b } = joinViaRedirect(env);
  b.drop();
  for (let i = 0; i < HOME_ATTEMPTS; i++) {
    env.tick(env.session.status.retryInMs);
    const ws = env.last();
    assert.equal(ws.url, NODE_B);
    assert.deepEqual(env.session.token, TOKEN, `still resuming at attempt ${i + 1}`);
    // A socket that hangs: neither opens nor fails.
    env.tick(10_000);
    assert.equal(ws.closedWith.code, CLIENT_CLOSE.CONNECT_TIMEOUT);
  }
  assert.equal(env.session.token, null);
  // The rejoin ran at once, within the last tick.
  assert.equal(env.last().url, URL_);
});

test("a home that is the entry itself is never given up: it may come back with its sessions", (t) => {
  const env = setup(t);
  env.session.connect();
  accept(env).drop();
  for (let i = 0; i < 6; i++) {
    env.tick(env.session.status.retryInMs);
    env.last().drop();
  }
  assert.deepEqual(env.session.token, TOKEN);
  env.tick(env.session.status.retryInMs);
  env.last().open();
  assert.deepEqual(env.last().sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 0 });
});

test("4002 at the home: forget the token and the home, and join anew at the entry at once", (t) => {
  const env = setup(t);
  const { b } = joinViaRedirect(env);
  b.drop();
  env.tick(env.session.status.retryInMs);
  const home = env.last();
  assert.equal(home.url, NODE_B);
  home.open();
  home.serverClose(4002, "resume token unknown or expired");
  assert.equal(env.session.homeUrl, null);
  assert.equal(env.session.status.retryInMs, 0);
  env.tick(0);
  assert.equal(env.last().url, URL_);
  env.last().open();
  assert.deepEqual(env.last().sentOf("Hello")[0], { type: "Hello", version: 2, resume: null, room: ROOM });
});

test("4021 at the node redirected to: back off, then join anew at the entry; the ticket is not tried again", (t) => {
  const env = setup(t);
  const { b } = redirectedToB(env);
  b.serverClose(4021, "seat ticket unknown, used or expired");
  const s = env.session.status;
  assert.equal(s.state, "reconnecting");
  assert.equal(s.code, 4021);
  assert.equal(env.events.close.at(-1).policy, "Rejoin");
  assert.equal(s.retryInMs, 500, "with back-off");
  env.tick(499);
  assert.equal(env.sockets.length, 2);
  env.tick(1);
  const again = env.last();
  assert.equal(again.url, URL_, "at the entry, not the node that refused");
  again.open();
  assert.deepEqual(again.sentOf("Hello")[0], { type: "Hello", version: 2, resume: null, room: ROOM });
  // Redirected again: the status stays where it is while the join goes on.
  const before = env.events.status.length;
  again.deliver(redirect(NODE_C, Uint8Array.from({ length: 16 }, () => 7)));
  assert.equal(env.events.status.length, before, "no flicker");
  assert.equal(env.last().url, NODE_C);
  env.last().open();
  assert.deepEqual(env.last().sentOf("Hello")[0].room, { type: "Reserved", ticket: Uint8Array.from({ length: 16 }, () => 7) });
  env.last().deliver(welcome());
  assert.equal(env.session.state, "connected");
  assert.equal(env.session.homeUrl, NODE_C);
  assert.match(env.events.notice.at(-1), /no longer valid.*new player/);
});

test("4020 (no directory): back off, then join at the entry as a new player", (t) => {
  const env = setup(t);
  env.session.connect();
  env.last().open();
  env.last().serverClose(4020, "room directory unavailable");
  assert.equal(env.session.state, "reconnecting");
  assert.equal(env.session.status.retryInMs, 500);
  env.tick(500);
  assert.equal(env.last().url, URL_);
  env.last().open();
  assert.deepEqual(env.last().sentOf("Hello")[0].resume, null);
  // And from a redirected node too: the next try starts at the entry.
  env.last().deliver(redirect());
  env.last().open();
  env.last().serverClose(4020, "");
  env.tick(env.session.status.retryInMs);
  assert.equal(env.last().url, URL_);
});

test("a failed connection to the node redirected to starts over at the entry, after back-off", (t) => {
  const env = setup(t);
  env.session.connect();
  env.last().open();
  env.last().deliver(redirect());
  assert.equal(env.last().url, NODE_B);
  env.last().drop();
  assert.equal(env.session.state, "reconnecting");
  assert.equal(env.session.status.attempt, 1);
  env.tick(env.session.status.retryInMs);
  assert.equal(env.last().url, URL_);
  env.last().open();
  assert.equal(env.last().sentOf("Hello")[0].room.type, "QuickJoin", "the page's request, not the spent ticket");
});

test("more than 3 redirects in one join stop with an error; each join may have 3", (t) => {
  assert.equal(MAX_REDIRECTS, 3);
  const env = setup(t);
  const errors = [];
  env.session.on("error", (e) => errors.push(e.message));
  env.session.connect();
  env.last().open();
  for (let hop = 1; hop <= MAX_REDIRECTS; hop++) {
    env.last().deliver(redirect(`ws://node-${hop}.test/ws`));
    assert.equal(env.last().url, `ws://node-${hop}.test/ws`, `hop ${hop} is followed`);
    env.last().open();
    assert.equal(env.session.state, "connecting");
  }
  const fourth = env.last();
  fourth.deliver(redirect("ws://node-4.test/ws"));
  assert.equal(env.sockets.length, 1 + MAX_REDIRECTS, "the fourth is not followed");
  assert.equal(fourth.closedWith.code, CLIENT_CLOSE.REDIRECTED);
  assert.equal(env.session.state, "stopped");
  assert.match(env.session.status.reason, /more than 3 redirects.*node-4\.test/);
  assert.match(errors.at(-1), /more than 3 redirects/);
  env.tick(120_000);
  assert.equal(env.sockets.length, 1 + MAX_REDIRECTS, "and nothing retries");
  // A new join (connect again) has its own 3.
  env.session.connect();
  assert.equal(env.last().url, URL_);
  env.last().open();
  for (let hop = 1; hop <= MAX_REDIRECTS; hop++) {
    env.last().deliver(redirect(`ws://node-${hop}.test/ws`));
    env.last().open();
  }
  env.last().deliver(welcome());
  assert.equal(env.session.state, "connected");
  assert.equal(env.session.homeUrl, "ws://node-3.test/ws");
});

test("a Redirect after Welcome, or to something that is not a WebSocket URL, is a broken server", (t) => {
  const env = setup(t);
  env.session.connect();
  accept(env).deliver(redirect());
  assert.equal(env.session.state, "stopped");
  assert.match(env.session.status.reason, /a Redirect after Welcome/);
  t.mock.timers.reset();
  for (const url of ["javascript:alert(1)", "file:///etc/passwd", "not a url", "ws://user:pw@node.test/ws"]) {
    const env2 = setup(t);
    env2.session.connect();
    env2.last().open();
    env2.last().deliver(redirect(url));
    assert.equal(env2.sockets.length, 1, `${url} is not followed`);
    assert.equal(env2.session.state, "stopped");
    assert.match(env2.session.status.reason, /not a WebSocket URL/);
    t.mock.timers.reset();
  }
});

test("a redirect to an http(s) URL goes to its ws(s) form", (t) => {
  assert.equal(webSocketUrl("http://127.0.0.1:9002/ws"), "ws://127.0.0.1:9002/ws");
  assert.equal(webSocketUrl("https://node.example/game/ws"), "wss://node.example/game/ws");
  assert.equal(webSocketUrl("wss://node.example/ws?x=1"), "wss://node.example/ws?x=1");
  assert.equal(webSocketUrl("ftp://node.example/ws"), null);
  assert.equal(webSocketUrl(42), null);
  const env = setup(t);
  env.session.connect();
  env.last().open();
  env.last().deliver(redirect("http://127.0.0.1:9002/ws"));
  assert.equal(env.last().url, "ws://127.0.0.1:9002/ws");
});

test("a stored session from before homes resumes at the entry; a stored home that is no URL is no session", (t) => {
  const storage = memoryStorage();
  storage.setItem(STORAGE_KEY, JSON.stringify({ token: "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", lastEvent: 4 }));
  const env = setup(t, { storage });
  assert.equal(env.session.homeUrl, URL_);
  env.session.connect();
  assert.equal(env.last().url, URL_);
  env.last().open();
  assert.deepEqual(env.last().sentOf("Hello")[0].resume, { token: TOKEN, lastEvent: 4 });
  t.mock.timers.reset();
  storage.setItem(STORAGE_KEY, JSON.stringify({ token: "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", lastEvent: 4, home: "javascript:1" }));
  const env2 = setup(t, { storage });
  assert.equal(env2.session.token, null);
  env2.session.connect();
  env2.last().open();
  assert.equal(env2.last().sentOf("Hello")[0].resume, null);
});

test("a page may not ask for a Reserved place itself: tickets come from redirects", () => {
  assert.throws(() => new Session({ url: URL_, room: { type: "Reserved", ticket: TICKET } }), TypeError);
});
