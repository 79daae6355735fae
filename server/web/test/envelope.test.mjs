// Tests of session.js's envelope codec against the Rust encoder's golden
// vectors (protocol/golden/vectors.json, written by
// protocol/tests/golden.rs), and of its small helpers (hex, invite codes,
// close descriptions, query strings).
//
// Every valid vector must decode to exactly the message the file states and
// re-encode to exactly its bytes; every invalid one must be refused; the
// close-code table and the limits must match. A protocol change that the
// JavaScript does not follow therefore fails here. Not for the session's
// behaviour (session.test.mjs), the games' bytes (arena-codec, four-codec)
// or the pages (e2e/).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  CLOSE_CODES,
  CODE_ALPHABET,
  DecodeError,
  MAX_CLIENT_MSG_BYTES,
  MAX_SERVER_MSG_BYTES,
  PROTOCOL_VERSION,
  decodeClient,
  decodeServer,
  describeClose,
  encodeClient,
  encodeServer,
  fromHex,
  normalizeCode,
  retryPolicy,
  roomRequestFromQuery,
  sessionOptionsFromQuery,
  toHex,
  tokenFromHex,
} from "../session.js";

const GOLDEN = fileURLToPath(new URL("../../../protocol/golden/vectors.json", import.meta.url));
const golden = JSON.parse(readFileSync(GOLDEN, "utf8"));

/**
 * The golden file's JSON shape of a message, turned into the codec's:
 * u64 fields from decimal strings to BigInt, tokens and game bytes from
 * hex to Uint8Array.
 */
function fromJson(message) {
  const m = structuredClone(message);
  switch (m.type) {
    case "Hello":
      if (m.resume !== null) m.resume.token = fromHex(m.resume.token);
      if (m.room.type === "Reserved") m.room.ticket = fromHex(m.room.ticket);
      break;
    case "Game":
    case "State":
    case "Event":
      m.data = fromHex(m.data);
      break;
    case "Ping":
      m.t = BigInt(m.t);
      break;
    case "Pong":
      m.t = BigInt(m.t);
      m.serverTimeMs = BigInt(m.serverTimeMs);
      break;
    case "Welcome":
      m.resumeToken = fromHex(m.resumeToken);
      m.game = fromHex(m.game);
      break;
    case "Redirect":
      m.ticket = fromHex(m.ticket);
      break;
    case "EventAck":
    case "Leave":
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

test("the golden file covers every message type and room request", () => {
  const types = new Set(golden.vectors.map((v) => `${v.direction}:${v.message.type}`));
  assert.deepEqual(
    [...types].sort(),
    [
      "client:EventAck",
      "client:Game",
      "client:Hello",
      "client:Leave",
      "client:Ping",
      "server:Event",
      "server:Pong",
      "server:Redirect",
      "server:State",
      "server:Welcome",
    ],
  );
  const rooms = new Set(golden.vectors.filter((v) => v.message.room).map((v) => v.message.room.type));
  assert.deepEqual([...rooms].sort(), ["Create", "JoinByCode", "JoinById", "QuickJoin", "Reserved"]);
  const names = golden.vectors.map((v) => v.name);
  for (const name of [
    "ping_t_18446744073709551615",
    "ping_t_9007199254740993",
    "hello_resume_event_u32_max",
    "welcome_private_with_code",
    "hello_reserved",
    "redirect",
    "redirect_long_url",
  ]) {
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

test("a Redirect and a Reserved request carry their ticket as 16 raw bytes", () => {
  const redirect = golden.vectors.find((x) => x.name === "redirect");
  const msg = decodeServer(fromHex(redirect.hex));
  assert.equal(msg.url, "ws://127.0.0.1:9002/ws");
  assert.ok(msg.ticket instanceof Uint8Array && msg.ticket.length === 16);
  // Its ticket goes back, as it came, in the Hello to that node.
  const hello = encodeClient({ type: "Hello", version: 2, resume: null, room: { type: "Reserved", ticket: msg.ticket } });
  assert.equal(toHex(hello), `00020004${toHex(msg.ticket)}`);
  // A URL of 251 bytes or more takes the 3-byte length form.
  const long = decodeServer(fromHex(golden.vectors.find((x) => x.name === "redirect_long_url").hex));
  assert.ok(long.url.length > 250);
  // Cut anywhere, neither decodes.
  for (const v of [redirect.hex, golden.vectors.find((x) => x.name === "hello_reserved").hex]) {
    const bytes = fromHex(v);
    const decode = v === redirect.hex ? decodeServer : decodeClient;
    for (let n = 1; n < bytes.length; n++) assert.throws(() => decode(bytes.subarray(0, n)), DecodeError, `${n} bytes`);
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
  assert.ok(golden.invalid.length >= 20, "the golden file lists the decoder checklist");
  for (const v of golden.invalid) {
    assert.throws(() => codecs[v.direction].decode(fromHex(v.hex)), DecodeError, `${v.name}: ${v.why}`);
  }
});

test("decoding takes an ArrayBuffer as a browser delivers it, and refuses text", () => {
  const v = golden.vectors.find((x) => x.name === "welcome_private_with_code");
  const bytes = fromHex(v.hex);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  assert.deepEqual(decodeServer(buffer), fromJson(v.message));
  assert.throws(() => decodeServer("hello"), DecodeError);
});

test("a server message over 1 MiB is refused before it is read", () => {
  const big = new Uint8Array(MAX_SERVER_MSG_BYTES + 1);
  big[0] = 3; // a Pong, had it been short
  assert.throws(() => decodeServer(big), /exceeds/);
});

test("the encoder refuses values outside their field's type", () => {
  const room = { type: "QuickJoin", roomType: "arena", options: [] };
  const hello = (version, extra = {}) => ({ type: "Hello", version, resume: null, room, ...extra });
  assert.throws(() => encodeClient(hello(65536)), RangeError);
  assert.throws(() => encodeClient(hello(-1)), RangeError);
  assert.throws(() => encodeClient(hello(1.5)), RangeError);
  assert.throws(() => encodeClient(hello(2, { resume: { token: new Uint8Array(15), lastEvent: 0 } })), TypeError);
  assert.throws(() => encodeClient(hello(2, { resume: { token: new Uint8Array(16), lastEvent: 2 ** 32 } })), RangeError);
  assert.throws(() => encodeClient(hello(2, { room: { type: "Teleport" } })), TypeError);
  assert.throws(() => encodeClient(hello(2, { room: { type: "Reserved", ticket: new Uint8Array(15) } })), TypeError);
  assert.throws(() => encodeServer({ type: "Redirect", url: "ws://x/ws", ticket: [1, 2] }), TypeError);
  assert.throws(() => encodeClient(hello(2, { room: { type: "QuickJoin", roomType: "arena", options: [["pace"]] } })), TypeError);
  assert.throws(() => encodeClient({ type: "Game", seq: 2 ** 32, data: new Uint8Array(0) }), RangeError);
  assert.throws(() => encodeClient({ type: "Game", seq: 1, data: [1, 2] }), TypeError);
  assert.throws(() => encodeClient({ type: "Ping", t: 1n << 64n }), RangeError);
  assert.throws(() => encodeClient({ type: "EventAck", upto: -1 }), RangeError);
  // A safe-integer Number is accepted for a u64 and encodes like the BigInt.
  assert.deepEqual(encodeClient({ type: "Ping", t: 1_700_000_000_000 }), encodeClient({ type: "Ping", t: 1_700_000_000_000n }));
});

test("constants and close-code policies match the Rust code", () => {
  assert.equal(PROTOCOL_VERSION, golden.protocol_version);
  assert.equal(MAX_CLIENT_MSG_BYTES, golden.max_client_msg_bytes);
  assert.equal(MAX_SERVER_MSG_BYTES, golden.max_server_msg_bytes);
  const rust = Object.fromEntries(golden.close_codes.map((c) => [c.code, { name: c.name, retry: c.retry }]));
  assert.deepEqual({ ...CLOSE_CODES }, rust);
  for (const c of golden.close_codes) assert.equal(retryPolicy(c.code), c.retry, `close ${c.code}`);
  // Codes the server never sends mean a broken connection: resume.
  for (const code of [1005, 1006, 3000, 3001, 3004]) assert.equal(retryPolicy(code), "Resume", `close ${code}`);
});

test("every close code has its own sentence, and the game's reason is shown as it is", () => {
  const sentences = new Set();
  for (const c of golden.close_codes) {
    const text = describeClose(c.code, "");
    assert.doesNotMatch(text, /closed \(code/, `close ${c.code} has a sentence of its own`);
    sentences.add(text);
  }
  assert.equal(sentences.size, golden.close_codes.length, "no two codes share a sentence");
  assert.equal(describeClose(4014, "the table is full"), "The game did not let you in: the table is full");
  assert.equal(describeClose(4015, "cheating"), "The game removed you: cheating");
  assert.equal(describeClose(4016, "the host closed the table"), "The room has ended: the host closed the table");
  assert.match(describeClose(4010, "no open room has that invite code"), /^No open room .*\(no open room has that invite code\)$/);
});

test("hex and tokens round-trip, and anything else is not a token", () => {
  const token = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
  assert.equal(toHex(token), "00112233445566778899aabbccddeeff");
  assert.deepEqual(tokenFromHex(toHex(token)), token);
  for (const bad of [null, "", "00112233", "00112233445566778899AABBCCDDEEFF", "zz112233445566778899aabbccddeeff"]) {
    assert.equal(tokenFromHex(bad), null, String(bad));
  }
  assert.equal(fromHex("abc"), null, "an odd number of digits");
});

test("invite codes normalise from what people type, as in limits.rs", () => {
  assert.equal(CODE_ALPHABET, "23456789ABCDEFGHJKMNPQRSTVWXYZ");
  assert.equal(normalizeCode("abcd-2345"), "ABCD2345");
  assert.equal(normalizeCode(" ab cd 23 45 "), "ABCD2345");
  assert.equal(normalizeCode("ABCD234"), null, "too short");
  assert.equal(normalizeCode("ABCD23450"), null, "0 is not in the alphabet");
  assert.equal(normalizeCode("ABCD234O"), null, "O is not in the alphabet");
  assert.equal(normalizeCode("ÄBCD2345"), null);
  assert.equal(normalizeCode("abcd\t2345"), null, "only spaces and dashes are dropped");
});

test("a page's query string names its room request and its storage key", () => {
  const q = (s) => roomRequestFromQuery(new URLSearchParams(s), "arena", ["pace"]);
  assert.deepEqual(q(""), {
    request: { type: "QuickJoin", roomType: "arena", options: [] },
    storageKey: "arena:quick",
  });
  assert.deepEqual(q("pace=fast").request, { type: "QuickJoin", roomType: "arena", options: [["pace", "fast"]] });
  assert.notEqual(q("pace=fast").storageKey, q("").storageKey);
  assert.deepEqual(q("room=12").request, { type: "JoinById", roomId: 12 });
  assert.deepEqual(q("code=k7m2-xq9p").request, { type: "JoinByCode", code: "K7M2XQ9P" });
  assert.deepEqual(q("code=nonsense").request, { type: "JoinByCode", code: "nonsense" }, "the server says no such room");
  assert.equal(q(`code=${"x".repeat(40)}`).request.code.length, 24, "clipped to the field's bound");
  assert.deepEqual(q("create=private").request, { type: "Create", roomType: "arena", options: [], private: true });
  assert.deepEqual(q("create=public&pace=fast").request, {
    type: "Create",
    roomType: "arena",
    options: [["pace", "fast"]],
    private: false,
  });
  assert.deepEqual(q("room=-1").request.type, "QuickJoin", "not a room id");
  assert.deepEqual(q("room=4294967296").request.type, "QuickJoin", "past u32");
  const keys = ["", "room=12", "code=K7M2XQ9P", "create=private", "create=public"].map((s) => q(s).storageKey);
  assert.equal(new Set(keys).size, keys.length, "each way of joining has its own stored session");
});

test("session options come from the query string, with the page's host as the default server", () => {
  const location = { protocol: "https:", host: "games.example:8443" };
  const o = sessionOptionsFromQuery(new URLSearchParams("backoffBase=200&pongTimeout=1500&pingInterval=x"), location);
  assert.equal(o.url, "wss://games.example:8443/ws");
  assert.equal(o.backoffBaseMs, 200);
  assert.equal(o.pongTimeoutMs, 1500);
  assert.equal(o.pingIntervalMs, undefined, "not a number: the default");
  const proxied = sessionOptionsFromQuery(new URLSearchParams("ws=ws://127.0.0.1:9/ws"), location);
  assert.equal(proxied.url, "ws://127.0.0.1:9/ws");
});
