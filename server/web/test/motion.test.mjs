// Unit tests of the arena's motion (games/arena/web/motion.js):
// StateBuffer, where entities are drawn between states (arrival times are
// passed in, so no clock is involved), and MovePacer, how the player's
// wish to move becomes Move messages on a Session (with a fake socket and
// node:test's fake timers). Not for the drawing itself (game.js, seen in
// the end-to-end screenshot) or the session's own behaviour
// (session.test.mjs).

import { test } from "node:test";
import assert from "node:assert/strict";
import { arenaCodec, arenaMotion } from "./game-modules.mjs";
import { accept, setup, stateMsg, welcome } from "./fake-server.mjs";

const { StateBuffer, MovePacer } = arenaMotion;
const { decodeMove } = arenaCodec;

const PERIOD = 1000 / 30;

function snap(tick, entities) {
  return { tick, ack: 0, players: 1, entities };
}

function player(id, x, y, kind = "Player") {
  return { id, kind, x, y, score: 0 };
}

/** A buffer fed ticks `from..=to` of a player moving 8 units per tick, each on time. */
function moving(from, to, delayTicks = 2) {
  const buf = new StateBuffer({ tickHz: 30, delayTicks });
  for (let tick = from; tick <= to; tick++) buf.push(snap(tick, [player(1, tick * 8, 100)]), tick * PERIOD);
  return buf;
}

function at(sample, key) {
  return sample.entities.find((e) => e.key === key);
}

test("nothing to draw before the first state", () => {
  assert.equal(new StateBuffer().sample(1000), null);
});

test("drawing runs delayTicks behind the newest state and interpolates between two", () => {
  const buf = moving(100, 110);
  // At the arrival time of tick 110, the drawn moment is tick 108.
  const s = buf.sample(110 * PERIOD);
  assert.ok(Math.abs(s.tick - 108) < 1e-9, String(s.tick));
  assert.equal(at(s, "p1").x, 108 * 8);
  // Half a tick later the player is drawn half way between 108 and 109.
  const half = buf.sample(110.5 * PERIOD);
  assert.ok(Math.abs(at(half, "p1").x - 108.5 * 8) < 1e-6, String(at(half, "p1").x));
  assert.equal(half.latest.tick, 110, "the newest state is reported for the HUD");
});

test("late states do not move the timeline: the earliest arrival sets it", () => {
  const buf = new StateBuffer({ tickHz: 30 });
  buf.push(snap(10, [player(1, 80, 0)]), 10 * PERIOD);
  // Tick 11 arrives 50 ms late; drawing stays on the on-time timeline.
  buf.push(snap(11, [player(1, 88, 0)]), 11 * PERIOD + 50);
  const s = buf.sample(11 * PERIOD + 50);
  assert.ok(Math.abs(s.tick - (11 + 50 / PERIOD - 2)) < 1e-9, String(s.tick));
});

test("when the next state is late, everything holds at the newest one instead of guessing", () => {
  const buf = moving(1, 5);
  const s = buf.sample(60 * PERIOD);
  assert.equal(s.tick, 5);
  assert.equal(at(s, "p1").x, 40);
});

test("skipped states are bridged smoothly", () => {
  const buf = new StateBuffer({ tickHz: 30, delayTicks: 0 });
  buf.push(snap(10, [player(1, 0, 0)]), 10 * PERIOD);
  // The server skipped ticks 11 to 13 for a slow reader.
  buf.push(snap(14, [player(1, 32, 0)]), 14 * PERIOD);
  const s = buf.sample(12 * PERIOD);
  assert.equal(at(s, "p1").x, 16);
});

test("with a state every third tick, drawing stays behind the next one and interpolates", () => {
  const buf = new StateBuffer({ tickHz: 30, delayTicks: 2 });
  assert.equal(buf.sendGap(), 1);
  for (let tick = 3; tick <= 30; tick += 3) buf.push(snap(tick, [player(1, tick * 8, 100)]), tick * PERIOD);
  assert.equal(buf.sendGap(), 3, "the server's send interval, seen in the ticks");
  // At tick 30's arrival, drawing is 2 + (3 - 1) = 4 ticks behind: tick 26,
  // between the states of ticks 24 and 27.
  const drawn = buf.sample(30 * PERIOD);
  assert.ok(Math.abs(drawn.tick - 26) < 1e-9, `drawn at ${drawn.tick}`);
  assert.ok(Math.abs(drawn.entities[0].x - 26 * 8) < 1e-9, "interpolated, not held");
  // The server raises its rate back: within half a second the gap follows.
  for (let tick = 31; tick <= 50; tick++) buf.push(snap(tick, [player(1, tick * 8, 100)]), tick * PERIOD);
  assert.equal(buf.sendGap(), 1);
});

test("a long jump is a teleport, drawn at once; a new entity appears where it is", () => {
  const buf = new StateBuffer({ tickHz: 30, delayTicks: 0 });
  const pickup = (x) => ({ id: 3, kind: "Pickup", x, y: 0, score: 0 });
  buf.push(snap(1, [player(1, 0, 0), pickup(10)]), PERIOD);
  buf.push(snap(2, [player(1, 8, 0), pickup(500), player(2, 300, 300)]), 2 * PERIOD);
  const s = buf.sample(1.5 * PERIOD);
  assert.equal(at(s, "p1").x, 4, "a short move glides");
  assert.equal(at(s, "k3").x, 500, "a respawned pickup jumps");
  assert.equal(at(s, "p2").x, 300, "a player coming into view appears");
});

test("a player that drops keeps being drawn, as a dropped player", () => {
  const buf = new StateBuffer({ tickHz: 30, delayTicks: 0 });
  buf.push(snap(1, [player(1, 0, 0)]), PERIOD);
  buf.push(snap(2, [player(1, 8, 0, "DroppedPlayer")]), 2 * PERIOD);
  const e = at(buf.sample(1.5 * PERIOD), "p1");
  assert.equal(e.kind, "DroppedPlayer");
  assert.equal(e.x, 4);
});

test("old and repeated states are ignored, and reset starts over", () => {
  const buf = moving(1, 3);
  buf.push(snap(2, [player(1, 999, 999)]), 4 * PERIOD);
  assert.equal(buf.entries.length, 3);
  buf.reset(60);
  assert.equal(buf.sample(0), null);
  assert.equal(buf.periodMs, 1000 / 60);
});

test("the buffer stays bounded however long it runs", () => {
  const buf = moving(1, 10_000);
  assert.ok(buf.entries.length <= 90, String(buf.entries.length));
  assert.ok(buf.offsets.length <= 90, String(buf.offsets.length));
});

// ---- MovePacer ----

/** A session with a pacer, both on fake timers; Pongs are not the subject. */
function pacerSetup(t) {
  const env = setup(t, { session: { pongTimeoutMs: 600_000 } });
  const pacer = new MovePacer(env.session, { now: () => Date.now() });
  return { ...env, pacer };
}

/** The Move messages a socket carried, as { seq, dx, dy }. */
function moves(ws) {
  return ws.sentOf("Game").map((m) => ({ seq: m.seq, ...decodeMove(m.data) }));
}

test("moves are numbered by one, paced, repeated while moving, and one zero move stops", (t) => {
  const env = pacerSetup(t);
  env.session.connect();
  const ws = accept(env);
  env.pacer.set(127, 0);
  assert.deepEqual(moves(ws), [{ seq: 1, dx: 127, dy: 0 }], "a new player's session can send at once");
  // Quick changes are paced at one per 34 ms; the latest wins.
  env.tick(10);
  env.pacer.set(0, 127);
  env.pacer.set(-127, 127);
  assert.equal(moves(ws).length, 1);
  env.tick(24);
  assert.deepEqual(moves(ws)[1], { seq: 2, dx: -127, dy: 127 });
  // While moving, the move is repeated every 250 ms.
  env.tick(250);
  assert.deepEqual(moves(ws)[2], { seq: 3, dx: -127, dy: 127 });
  // Stopping sends one zero move, and then nothing.
  env.pacer.set(0, 0);
  env.tick(34);
  assert.deepEqual(moves(ws)[3], { seq: 4, dx: 0, dy: 0 });
  env.tick(5000);
  assert.equal(moves(ws).length, 4);
  // Out-of-range values are clamped to the documented range.
  env.pacer.set(500, -500.4);
  env.tick(34);
  assert.deepEqual(moves(ws)[4], { seq: 5, dx: 127, dy: -127 });
  assert.equal(env.session.gameSeq, 5);
  assert.deepEqual(env.pacer.desired, { dx: 127, dy: -127 });
});

test("a wish made while disconnected waits, and a resumed session sends it above the first state's ack", (t) => {
  const env = pacerSetup(t);
  env.session.connect();
  let ws = accept(env);
  env.pacer.set(127, 0);
  assert.equal(env.session.gameSeq, 1);
  ws.drop();
  env.pacer.set(0, 127);
  env.tick(env.session.status.retryInMs);
  ws = accept(env, welcome({ resumed: true }));
  assert.equal(moves(ws).length, 0, "a resumed session waits for its first state");
  // The server applied more than this page remembers (say, a reload):
  // numbering continues above the ack.
  ws.deliver(stateMsg(100, 40));
  assert.deepEqual(moves(ws), [{ seq: 41, dx: 0, dy: 127 }], "the held direction is sent again");
});

test("a new player's moves start again from 1, and dispose stops the pacer", (t) => {
  const env = pacerSetup(t);
  env.session.connect();
  let ws = accept(env);
  env.pacer.set(0, 127);
  env.tick(1000);
  assert.ok(env.session.gameSeq > 1);
  ws.serverClose(4002, "");
  env.tick(0);
  ws = accept(env, welcome({ playerId: 9 }));
  assert.equal(moves(ws)[0].seq, 1);
  env.pacer.dispose();
  const count = moves(ws).length;
  env.tick(5000);
  assert.equal(moves(ws).length, count, "no repeats after dispose");
});
