// Tests of arena.js's codec against the Rust encoder's golden vectors
// (protocol/golden/vectors.json, written by protocol/tests/golden.rs).
//
// Every valid vector must decode to exactly the message the file states and
// re-encode to exactly its bytes; every invalid one must be refused; the
// close-code table and the limits must match. A protocol change that the
// JavaScript does not follow therefore fails here. Not for the connection's
// behaviour (connection.test.mjs) or the page (e2e/).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  CLOSE_CODES,
  DecodeError,
  ENTITY_KINDS,
  MAX_CLIENT_MSG_BYTES,
  MAX_SERVER_MSG_BYTES,
  PROTOCOL_VERSION,
  decodeClient,
  decodeServer,
  encodeClient,
  encodeServer,
  retryPolicy,
  tokenFromHex,
  tokenToHex,
} from "../arena.js";

const GOLDEN = fileURLToPath(new URL("../../../protocol/golden/vectors.json", import.meta.url));
const golden = JSON.parse(readFileSync(GOLDEN, "utf8"));

function fromHex(hex) {
  return Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
}

function toHex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

/**
 * The golden file's JSON shape of a message, turned into the codec's:
 * u64 fields from decimal strings to BigInt, tokens from hex to bytes.
 */
function fromJson(message) {
  const m = { ...message };
  switch (m.type) {
    case "Hello":
      m.resume = m.resume === null ? null : tokenFromHex(m.resume);
      break;
    case "Input":
      break;
    case "Ping":
      m.t = BigInt(m.t);
      break;
    case "Welcome":
      m.resumeToken = tokenFromHex(m.resumeToken);
      break;
    case "Pong":
      m.t = BigInt(m.t);
      m.serverTimeMs = BigInt(m.serverTimeMs);
      break;
    case "Snapshot":
      m.entities = m.entities.map((e) => ({ ...e }));
      break;
    default:
      throw new Error(`the golden file has a message type this test does not know: ${m.type}`);
  }
  return m;
}

const codecs = {
  client: { encode: encodeClient, decode: decodeClient },
  server: { encode: encodeServer, decode: decodeServer },
};

test("the golden file covers every message type, kind and edge the brief asks for", () => {
  const types = new Set(golden.vectors.map((v) => `${v.direction}:${v.message.type}`));
  assert.deepEqual(
    [...types].sort(),
    ["client:Hello", "client:Input", "client:Ping", "server:Pong", "server:Snapshot", "server:Welcome"],
  );
  const names = golden.vectors.map((v) => v.name);
  for (const name of ["ping_t_18446744073709551615", "ping_t_9007199254740993", "input_seq_4294967295", "snapshot_empty"]) {
    assert.ok(names.includes(name), `${name} is missing from the golden file`);
  }
});

test("every golden vector decodes to its stated message", () => {
  for (const v of golden.vectors) {
    const got = codecs[v.direction].decode(fromHex(v.hex));
    assert.deepEqual(got, fromJson(v.message), v.name);
  }
});

test("every golden vector re-encodes byte for byte", () => {
  for (const v of golden.vectors) {
    const { encode, decode } = codecs[v.direction];
    assert.equal(toHex(encode(fromJson(v.message))), v.hex, `${v.name}: from the stated message`);
    assert.equal(toHex(encode(decode(fromHex(v.hex)))), v.hex, `${v.name}: from the decoded message`);
  }
});

test("u64 values stay exact beyond 2^53", () => {
  const v = golden.vectors.find((x) => x.name === "ping_t_9007199254740993");
  const msg = decodeClient(fromHex(v.hex));
  assert.equal(msg.t, 9007199254740993n);
  assert.equal(typeof msg.t, "bigint");
  // A Number would have rounded this to 2^53; the BigInt must not.
  assert.notEqual(msg.t, BigInt(Number(msg.t)));
});

test("every invalid payload is refused with a DecodeError", () => {
  assert.ok(golden.invalid.length >= 15, "the golden file lists the decoder checklist");
  for (const v of golden.invalid) {
    assert.throws(() => codecs[v.direction].decode(fromHex(v.hex)), DecodeError, `${v.name}: ${v.why}`);
  }
});

test("decoding takes an ArrayBuffer as a browser delivers it, and refuses text", () => {
  const v = golden.vectors.find((x) => x.name === "welcome_player_65536");
  const bytes = fromHex(v.hex);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  assert.deepEqual(decodeServer(buffer), fromJson(v.message));
  assert.throws(() => decodeServer("hello"), DecodeError);
});

test("a server message over 1 MiB is refused before it is read", () => {
  const big = new Uint8Array(MAX_SERVER_MSG_BYTES + 1);
  big[0] = 2; // a Pong, had it been short
  assert.throws(() => decodeServer(big), /exceeds/);
});

test("the encoder refuses values outside their field's type", () => {
  const hello = (version) => ({ type: "Hello", version, resume: null });
  assert.throws(() => encodeClient(hello(65536)), RangeError);
  assert.throws(() => encodeClient(hello(-1)), RangeError);
  assert.throws(() => encodeClient(hello(1.5)), RangeError);
  assert.throws(() => encodeClient({ type: "Input", seq: 2 ** 32, dx: 0, dy: 0 }), RangeError);
  assert.throws(() => encodeClient({ type: "Input", seq: 1, dx: 128, dy: 0 }), RangeError);
  assert.throws(() => encodeClient({ type: "Ping", t: 1n << 64n }), RangeError);
  assert.throws(() => encodeClient({ type: "Hello", version: 1, resume: new Uint8Array(15) }), TypeError);
  // A safe-integer Number is accepted for a u64 and encodes like the BigInt.
  assert.deepEqual(encodeClient({ type: "Ping", t: 1_700_000_000_000 }), encodeClient({ type: "Ping", t: 1_700_000_000_000n }));
});

test("constants, entity kinds and close-code policies match the Rust code", () => {
  assert.equal(PROTOCOL_VERSION, golden.protocol_version);
  assert.equal(MAX_CLIENT_MSG_BYTES, golden.max_client_msg_bytes);
  assert.equal(MAX_SERVER_MSG_BYTES, golden.max_server_msg_bytes);
  assert.deepEqual([...ENTITY_KINDS], golden.entity_kinds);
  const rust = Object.fromEntries(golden.close_codes.map((c) => [c.code, { name: c.name, retry: c.retry }]));
  assert.deepEqual({ ...CLOSE_CODES }, rust);
  for (const c of golden.close_codes) assert.equal(retryPolicy(c.code), c.retry, `close ${c.code}`);
  // Codes the server never sends mean a broken connection: resume.
  for (const code of [1005, 1006, 3000, 3001]) assert.equal(retryPolicy(code), "Resume", `close ${code}`);
});

test("tokens round-trip through hex and anything else is not a token", () => {
  const token = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
  assert.equal(tokenToHex(token), "00112233445566778899aabbccddeeff");
  assert.deepEqual(tokenFromHex(tokenToHex(token)), token);
  for (const bad of [null, "", "00112233", "00112233445566778899AABBCCDDEEFF", "zz112233445566778899aabbccddeeff"]) {
    assert.equal(tokenFromHex(bad), null, String(bad));
  }
});
