// End-to-end test of a cluster (protocol/PROTOCOL.md section 2.11) in
// headless Chromium: a real redis-server as the room directory and two
// nodes of the release server binary sharing it. A host opens four in a
// row's page on one node and creates a private room (the cluster puts the
// room on whichever node it chooses: that node is the room's); a guest
// opens the page of the other node, the entry, with the invite code. The
// guest's join must be redirected to the room's node and welcomed there,
// its page connected and at the table without ever showing
// "reconnecting"; a move is played across. Then the guest's socket is
// closed from inside its page (a chaos drop) and the session must resume
// on the room's node, its home, not on the entry; and a reload of the
// guest's page must resume there too, from the home it stored.
//
// Every WebSocket a page opens is recorded by an init script that wraps
// the browser's WebSocket class (window.__sockets: the URLs in order, and
// drop() to close the newest one with a 3000-range code, which the server
// treats as a dropped connection). Pages reach the nodes directly: a
// redirect names a node's public URL, which a proxy could not stand in
// for without changing what is tested.
//
// Needs: the server binary with --directory (ARENA_SERVER_BIN, default
// target/release/server), redis-server (REDIS_SERVER_BIN or PATH) and
// Chromium; scripts/test-web provides all three. Fails, never skips, when
// one is missing. Not for the redirect rules in detail (the unit tests in
// test/session.test.mjs drive every branch with fake timers) nor the
// server's placement policy (the server's own tests).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import {
  RedisProcess,
  ServerProcess,
  artifact,
  fourPage,
  freePort,
  launchChromium,
  requireServerFlag,
  waitInPage,
  watchdog,
} from "./harness.mjs";

/** Per-test bound; a passing test takes a few seconds. */
const TEST_TIMEOUT = 30_000;

/** Bound on the whole file (see arena.test.mjs). */
const FILE_TIMEOUT = 120_000;

/**
 * Quick back-off and heartbeat for the pages (session.js documents these
 * options), so that a resume after the drop takes well under a second.
 */
const SESSION_QUERY = "backoffBase=200&backoffMax=1000&pingInterval=500&pongTimeout=1500";

let redis;
let browser;
/** The two nodes: { name, id, port, origin, ws, server }. */
const nodes = [
  { name: "A", id: "node-a" },
  { name: "B", id: "node-b" },
];
/** The players: { name, page }. */
const host = { name: "host" };
const guest = { name: "guest" };
/** Filled in by the first test: the room's node, the other node (the guest's entry), the code. */
const room = { node: null, entry: null, code: null, id: null };

const disarm = watchdog("cluster e2e", FILE_TIMEOUT, () => {
  for (const n of nodes) n.server?.child?.kill("SIGKILL");
  redis?.child?.kill("SIGKILL");
});

/** Records every WebSocket the page opens; runs before the page's own scripts. */
function recordSockets() {
  const Native = window.WebSocket;
  const urls = [];
  let newest = null;
  class Recorded extends Native {
    constructor(url, protocols) {
      if (protocols === undefined) super(url);
      else super(url, protocols);
      urls.push(String(url));
      newest = this;
    }
  }
  window.WebSocket = Recorded;
  Object.defineProperty(window, "__sockets", {
    value: Object.freeze({
      get urls() {
        return [...urls];
      },
      /** Closes the newest socket as a broken client would: not 1000, so the server keeps the player. */
      drop() {
        newest.close(3999, "chaos drop");
      },
    }),
  });
}

/** A page in a browser context of its own (its own sessionStorage), recording its sockets. */
async function newPage(player) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  await context.addInitScript(recordSockets);
  player.page = await context.newPage();
  player.page.on("pageerror", (e) => console.error(`page ${player.name} error: ${e.message}`));
}

function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
  });
}

/** A gauge of a node's /metrics, or null when it is not there. */
async function gauge(node, name) {
  const { body } = await get(`${node.origin}/metrics`);
  const line = body.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : null;
}

/**
 * Waits (bounded) until `node` has written its directory record at or
 * after `since` (ms since the epoch), so that the record shows everything
 * the node held then: the heartbeat's age is on its /metrics.
 */
async function waitPublished(node, since, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  let seen = null;
  while (Date.now() < deadline) {
    const up = await gauge(node, "game_directory_up");
    const age = await gauge(node, "game_directory_heartbeat_age_seconds");
    seen = { up, age };
    if (up === 1 && age !== null && age >= 0 && Date.now() - age * 1000 >= since) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`node ${node.name} did not publish its record to the directory within ${timeoutMs} ms (last /metrics: ${JSON.stringify(seen)})`);
}

/** A player's page as plain data: the four page's hook and the recorded sockets. */
async function look(player) {
  const four = await fourPage(player.page);
  const socketsAndBadge = await player.page.evaluate(() => ({
    sockets: window.__sockets.urls,
    badge: document.getElementById("badge").textContent,
    badgeState: document.getElementById("badge").dataset.state,
  }));
  return { ...four, ...socketsAndBadge };
}

before(async () => {
  requireServerFlag("--directory");
  redis = new RedisProcess({ logPath: artifact("e2e-cluster-redis.log") });
  await redis.start();
  for (const node of nodes) {
    node.port = await freePort();
    node.origin = `http://127.0.0.1:${node.port}`;
    node.ws = `ws://127.0.0.1:${node.port}/ws`;
    node.server = new ServerProcess({
      port: node.port,
      args: ["--seed", "7", "--directory", redis.url, "--public-url", `${node.origin}/`, "--node-id", node.id],
      logPath: artifact(`e2e-cluster-${node.id}.log`),
    });
  }
  await Promise.all(nodes.map((n) => n.server.start()));
  const started = Date.now();
  await Promise.all(nodes.map((n) => waitPublished(n, started)));
  browser = await launchChromium();
  await newPage(host);
  await newPage(guest);
});

after(async () => {
  disarm();
  await browser?.close().catch(() => {});
  for (const node of nodes) await node.server?.close().catch(() => {});
  await redis?.close().catch(() => {});
});

test("the host creates a private room through one node's page", { timeout: TEST_TIMEOUT }, async (t) => {
  const [first] = nodes;
  const response = await host.page.goto(`${first.origin}/four/?create=private&${SESSION_QUERY}`);
  assert.equal(response.status(), 200);
  await waitInPage(host.page, "the host's private room", () => window.__four.connection === "connected" && window.__four.state !== null);
  const welcomedAt = Date.now();
  const h = await look(host);
  assert.match(h.inviteCode, /^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{8}$/);
  assert.equal(h.seat, "Red");
  // The cluster places a new room where it likes: the room's node is the
  // one the host's session was welcomed on, its last socket.
  assert.equal(h.sockets[0], first.ws, "the host's join started at the node whose page it opened");
  assert.ok(h.sockets.length <= 2, `at most one redirect for a create: ${h.sockets}`);
  room.node = nodes.find((n) => n.ws === h.sockets.at(-1));
  assert.ok(room.node, `the host ended on a node of the cluster: ${h.sockets}`);
  room.entry = nodes.find((n) => n !== room.node);
  room.code = h.inviteCode;
  room.id = h.roomId;
  t.diagnostic(`room ${room.id} is on node ${room.node.name}; the host's sockets: ${h.sockets.join(", ")}`);
  assert.deepEqual(h.states, ["connecting", "connected"], "a redirected create, if any, is part of connecting");
  // The guest's entry must know the room before the guest asks for it.
  await waitPublished(room.node, welcomedAt);
});

test("the guest joins by code at the other node: redirected to the room's node, connected there, at the table", { timeout: TEST_TIMEOUT }, async () => {
  const response = await guest.page.goto(`${room.entry.origin}/four/?code=${room.code}&${SESSION_QUERY}`);
  assert.equal(response.status(), 200);
  await waitInPage(guest.page, "the guest at the host's table", () => window.__four.connection === "connected" && window.__four.status?.type === "Playing");
  await waitInPage(host.page, "the host to see the game start", () => window.__four.status?.type === "Playing");
  const g = await look(guest);
  assert.deepEqual(g.sockets, [room.entry.ws, room.node.ws], "one join at the entry, one redirect to the room's node, nothing else");
  assert.deepEqual(g.states, ["connecting", "connected"], "never 'reconnecting': the redirect is part of connecting");
  assert.equal(g.badge, "Connected");
  assert.equal(g.badgeState, "connected");
  assert.equal(g.roomId, room.id, "the host's room");
  assert.equal(g.inviteCode, room.code);
  assert.equal(g.seat, "Yellow");
  assert.equal(g.resumed, false);
  assert.equal(new URL(guest.page.url()).origin, room.entry.origin, "the page itself stays where it was opened");
  // The game flows between the two: whoever is to move drops a disc, and
  // both pages see it.
  const h = await look(host);
  assert.equal(h.states.includes("reconnecting"), false);
  const mover = g.turn === g.seat ? guest : host;
  await waitInPage(mover.page, "column 3 to be clickable", () => !document.getElementById("col-3").disabled);
  await mover.page.click("#col-3");
  for (const p of [host, guest]) {
    await waitInPage(p.page, `${p.name} to see the move`, () => window.__four.moves.length === 1 && window.__four.state.moves === 1);
  }
  assert.deepEqual((await look(guest)).moves, (await look(host)).moves);
});

test("a chaos drop resumes the guest at its home, the room's node, not at the entry", { timeout: TEST_TIMEOUT }, async () => {
  const before = await look(guest);
  await guest.page.evaluate(() => window.__sockets.drop());
  await waitInPage(
    guest.page,
    "the guest to resume",
    (w) => window.__four.connection === "connected" && window.__four.welcomes > w && window.__four.resumed === true,
    before.welcomes,
    15_000,
  );
  const g = await look(guest);
  const after = g.sockets.slice(before.sockets.length);
  assert.ok(after.length >= 1, "a new socket after the drop");
  assert.deepEqual(after, after.map(() => room.node.ws), `every attempt after the drop went to the home: ${after}`);
  assert.equal(g.playerId, before.playerId, "the same player");
  assert.equal(g.seat, "Yellow", "in the same seat");
  assert.deepEqual(g.moves, before.moves, "nothing lost");
  assert.ok(g.states.includes("reconnecting"), "a real drop shows as reconnecting");
  assert.equal(g.badge, "Connected");
  await waitInPage(host.page, "the host to see the guest back", () => window.__four.state.seats.every((s) => s.connected));
});

test("a reload of the guest's page resumes at the home it stored", { timeout: TEST_TIMEOUT }, async () => {
  const before = await look(guest);
  await guest.page.reload();
  await waitInPage(
    guest.page,
    "the reloaded guest to resume, with a state",
    () => window.__four.connection === "connected" && window.__four.resumed === true && window.__four.state !== null,
    undefined,
    15_000,
  );
  const g = await look(guest);
  assert.deepEqual(g.sockets, [room.node.ws], "straight to the home, not through the entry the page was opened from");
  assert.equal(g.playerId, before.playerId);
  assert.equal(g.seat, "Yellow");
  assert.equal(g.roomId, room.id);
  assert.deepEqual(g.states, ["connecting", "connected"]);
  await guest.page.screenshot({ path: artifact("cluster-guest.png") });
});
