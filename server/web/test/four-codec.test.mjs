// Tests of four-in-a-row's browser codec (games/four/web/codec.js) against
// the Rust encoder's golden vectors (games/four/golden/vectors.json,
// written by games/four/tests/golden.rs): every vector decodes to its
// stated value and re-encodes byte for byte, every invalid one is refused.
// Not for the envelope (envelope.test.mjs) or the page (e2e/four.test.mjs).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DecodeError, fromHex, toHex } from "../session.js";
import { fourCodec } from "./game-modules.mjs";

const GOLDEN = fileURLToPath(new URL("../../../games/four/golden/vectors.json", import.meta.url));
const golden = JSON.parse(readFileSync(GOLDEN, "utf8"));

const f = fourCodec;
const codecs = {
  FourMsg: { encode: f.encodeMsg, decode: f.decodeMsg },
  FourEvent: { encode: f.encodeEvent, decode: f.decodeEvent },
  FourState: { encode: f.encodeState, decode: f.decodeState },
  FourWelcome: { encode: f.encodeWelcome, decode: f.decodeWelcome },
};

test("the golden file covers every type, event and status", () => {
  assert.deepEqual([...new Set(golden.vectors.map((v) => v.kind))].sort(), Object.keys(codecs).sort());
  const events = new Set(golden.vectors.filter((v) => v.kind === "FourEvent").map((v) => v.value.type));
  assert.equal(events.size, 11, [...events].join());
  const statuses = new Set(golden.vectors.filter((v) => v.kind === "FourState").map((v) => v.value.status.type));
  assert.deepEqual([...statuses].sort(), ["Draw", "Forfeit", "Playing", "Waiting", "Won"]);
});

test("every golden vector decodes to its stated value", () => {
  for (const v of golden.vectors) {
    assert.deepEqual(codecs[v.kind].decode(fromHex(v.hex)), v.value, v.name);
  }
});

test("every golden vector re-encodes byte for byte", () => {
  for (const v of golden.vectors) {
    const { encode, decode } = codecs[v.kind];
    assert.equal(toHex(encode(v.value)), v.hex, `${v.name}: from the stated value`);
    assert.equal(toHex(encode(decode(fromHex(v.hex)))), v.hex, `${v.name}: from the decoded value`);
  }
});

test("every invalid value is refused with a DecodeError", () => {
  assert.ok(golden.invalid.length >= 15);
  for (const v of golden.invalid) {
    assert.throws(() => codecs[v.kind].decode(fromHex(v.hex)), DecodeError, `${v.name}: ${v.why}`);
  }
});

test("the encoder refuses values outside their types", () => {
  assert.throws(() => f.encodeMsg({ type: "Drop", column: 256 }), RangeError);
  assert.throws(() => f.encodeMsg({ type: "Undo" }), TypeError);
  assert.throws(() => f.encodeEvent({ type: "Dropped", seat: "Green" }), RangeError);
});

test("board helpers follow msg.rs: row-major from the bottom, red 1, yellow 2", () => {
  assert.equal(f.CELLS, 42);
  assert.equal(f.cellIndex(3, 0), 3);
  assert.equal(f.cellIndex(0, 1), 7);
  assert.equal(f.cellIndex(6, 5), 41);
  assert.equal(f.seatCell("Red"), 1);
  assert.equal(f.seatCell("Yellow"), 2);
  assert.equal(f.otherSeat("Red"), "Yellow");
});
