// Tests of the arena's browser codec (games/arena/web/codec.js) against
// the Rust encoder's golden vectors (games/arena/golden/vectors.json,
// written by games/arena/tests/golden.rs): every vector decodes to its
// stated value and re-encodes byte for byte, every invalid one is refused.
// Not for the envelope (envelope.test.mjs) or motion (motion.test.mjs).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DecodeError, fromHex, toHex } from "../session.js";
import { arenaCodec } from "./game-modules.mjs";

const GOLDEN = fileURLToPath(new URL("../../../games/arena/golden/vectors.json", import.meta.url));
const golden = JSON.parse(readFileSync(GOLDEN, "utf8"));

const { decodeMove, decodeState, decodeWelcome, encodeMove, encodeState, encodeWelcome, ENTITY_KINDS, entityKey } = arenaCodec;

const codecs = {
  Move: { encode: encodeMove, decode: decodeMove },
  ArenaWelcome: { encode: encodeWelcome, decode: decodeWelcome },
  ArenaState: { encode: encodeState, decode: decodeState },
};

test("the golden file covers every type and entity kind", () => {
  assert.deepEqual([...new Set(golden.vectors.map((v) => v.kind))].sort(), Object.keys(codecs).sort());
  const kinds = new Set(golden.vectors.flatMap((v) => (v.kind === "ArenaState" ? v.value.entities.map((e) => e.kind) : [])));
  assert.deepEqual([...kinds].sort(), [...ENTITY_KINDS].sort());
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
  assert.ok(golden.invalid.length >= 8);
  for (const v of golden.invalid) {
    assert.throws(() => codecs[v.kind].decode(fromHex(v.hex)), DecodeError, `${v.name}: ${v.why}`);
  }
});

test("the encoder refuses moves and entities outside their types", () => {
  assert.throws(() => encodeMove({ dx: 128, dy: 0 }), RangeError);
  assert.throws(() => encodeMove({ dx: 0, dy: 0.5 }), RangeError);
  assert.throws(() => encodeState({ players: 1, entities: [{ id: 1, kind: "Ghost", x: 0, y: 0, score: 0 }] }), RangeError);
  assert.throws(() => encodeWelcome({ worldWidth: 70000, worldHeight: 1, viewRadius: 1, playerSpeed: 1 }), RangeError);
});

test("players and pickups have separate keys, and a dropped player keeps its key", () => {
  const player = { id: 5, kind: "Player", x: 0, y: 0, score: 0 };
  assert.equal(entityKey(player), entityKey({ ...player, kind: "DroppedPlayer" }));
  assert.notEqual(entityKey(player), entityKey({ ...player, kind: "Pickup" }));
});
