// Unit tests of SnapshotBuffer (arena.js): where entities are drawn between
// snapshots. Arrival times are passed in, so no clock is involved. Not for
// the drawing itself (game.js, seen in the end-to-end screenshot).

import { test } from "node:test";
import assert from "node:assert/strict";
import { SnapshotBuffer, entityKey } from "../arena.js";

const PERIOD = 1000 / 30;

function snap(tick, entities) {
  return { type: "Snapshot", tick, ack: 0, players: 1, entities };
}

function player(id, x, y, kind = "Player") {
  return { id, kind, x, y, score: 0 };
}

/** A buffer fed ticks `from..=to` of a player moving 8 units per tick, each on time. */
function moving(from, to, delayTicks = 2) {
  const buf = new SnapshotBuffer({ tickHz: 30, delayTicks });
  for (let tick = from; tick <= to; tick++) buf.push(snap(tick, [player(1, tick * 8, 100)]), tick * PERIOD);
  return buf;
}

function at(sample, key) {
  return sample.entities.find((e) => e.key === key);
}

test("players and pickups have separate keys, and a dropped player keeps its key", () => {
  assert.equal(entityKey(player(5, 0, 0)), entityKey(player(5, 0, 0, "DroppedPlayer")));
  assert.notEqual(entityKey(player(5, 0, 0)), entityKey({ id: 5, kind: "Pickup", x: 0, y: 0, score: 0 }));
});

test("nothing to draw before the first snapshot", () => {
  assert.equal(new SnapshotBuffer().sample(1000), null);
});

test("drawing runs delayTicks behind the newest snapshot and interpolates between two", () => {
  const buf = moving(100, 110);
  // At the arrival time of tick 110, the drawn moment is tick 108.
  const s = buf.sample(110 * PERIOD);
  assert.ok(Math.abs(s.tick - 108) < 1e-9, String(s.tick));
  assert.equal(at(s, "p1").x, 108 * 8);
  // Half a tick later the player is drawn half way between 108 and 109.
  const half = buf.sample(110.5 * PERIOD);
  assert.ok(Math.abs(at(half, "p1").x - 108.5 * 8) < 1e-6, String(at(half, "p1").x));
  assert.equal(half.latest.tick, 110, "the newest snapshot is reported for the HUD");
});

test("late snapshots do not move the timeline: the earliest arrival sets it", () => {
  const buf = new SnapshotBuffer({ tickHz: 30 });
  buf.push(snap(10, [player(1, 80, 0)]), 10 * PERIOD);
  // Tick 11 arrives 50 ms late; drawing stays on the on-time timeline.
  buf.push(snap(11, [player(1, 88, 0)]), 11 * PERIOD + 50);
  const s = buf.sample(11 * PERIOD + 50);
  assert.ok(Math.abs(s.tick - (11 + 50 / PERIOD - 2)) < 1e-9, String(s.tick));
});

test("when the next snapshot is late, everything holds at the newest one instead of guessing", () => {
  const buf = moving(1, 5);
  const s = buf.sample(60 * PERIOD);
  assert.equal(s.tick, 5);
  assert.equal(at(s, "p1").x, 40);
});

test("skipped snapshots are bridged smoothly", () => {
  const buf = new SnapshotBuffer({ tickHz: 30, delayTicks: 0 });
  buf.push(snap(10, [player(1, 0, 0)]), 10 * PERIOD);
  // The server skipped ticks 11 to 13 for a slow reader.
  buf.push(snap(14, [player(1, 32, 0)]), 14 * PERIOD);
  const s = buf.sample(12 * PERIOD);
  assert.equal(at(s, "p1").x, 16);
});

test("a long jump is a teleport, drawn at once; a new entity appears where it is", () => {
  const buf = new SnapshotBuffer({ tickHz: 30, delayTicks: 0 });
  const pickup = (x) => ({ id: 3, kind: "Pickup", x, y: 0, score: 0 });
  buf.push(snap(1, [player(1, 0, 0), pickup(10)]), PERIOD);
  buf.push(snap(2, [player(1, 8, 0), pickup(500), player(2, 300, 300)]), 2 * PERIOD);
  const s = buf.sample(1.5 * PERIOD);
  assert.equal(at(s, "p1").x, 4, "a short move glides");
  assert.equal(at(s, "k3").x, 500, "a respawned pickup jumps");
  assert.equal(at(s, "p2").x, 300, "a player coming into view appears");
});

test("a player that drops keeps being drawn, as a dropped player", () => {
  const buf = new SnapshotBuffer({ tickHz: 30, delayTicks: 0 });
  buf.push(snap(1, [player(1, 0, 0)]), PERIOD);
  buf.push(snap(2, [player(1, 8, 0, "DroppedPlayer")]), 2 * PERIOD);
  const e = at(buf.sample(1.5 * PERIOD), "p1");
  assert.equal(e.kind, "DroppedPlayer");
  assert.equal(e.x, 4);
});

test("old and repeated snapshots are ignored, and reset starts over", () => {
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
