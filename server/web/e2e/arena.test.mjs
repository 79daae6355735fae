// End-to-end test of the arena's page (/arena/) in headless Chromium
// against the real server binary: the page loads and connects without a
// click, the keyboard moves the player, a screenshot is taken during play
// (artifacts/arena.png), a connection cut while the server runs resumes
// the same player, a frozen connection is caught by the heartbeat and
// resumed, and a killed server is retried with growing back-off until it
// is back, where the page joins as a new player and says so.
//
// The browser reaches the server through a TCP proxy (harness.mjs) that the
// test can cut or freeze; the page is told to use it with ?ws=, and to back
// off and ping quickly with ?backoffBase=200&backoffMax=2000&pingInterval=500
// &pongTimeout=1500 (documented in session.js). The tests run in order and
// share one server and one browser; every wait is bounded and the file
// finishes in well under two minutes.
//
// Needs: the server binary (ARENA_SERVER_BIN, default target/release/server)
// and Chromium (CHROMIUM_BIN, default /usr/bin/chromium); scripts/test-web
// provides both. Not for protocol or state-machine details, which the unit
// tests cover with fake timers.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { ServerProcess, TcpProxy, artifact, freePort, launchChromium, waitInPage, watchdog } from "./harness.mjs";

/**
 * A small field, so that the few players of this test meet quickly and the
 * screenshot shows them together; the rest is the server's defaults.
 */
const WORLD = 600;
const SERVER_ARGS = ["--seed", "7", "--world-width", `${WORLD}`, "--world-height", `${WORLD}`, "--pickups", "24"];

/** Per-test bound; a passing test takes a few seconds. */
const TEST_TIMEOUT = 25_000;

/**
 * Bound on the whole file: whatever hangs, the run ends by then, and the
 * server child (which would outlive this process) is killed first.
 * Playwright kills the browser it launched when this process exits.
 */
const FILE_TIMEOUT = 110_000;

let server;
let proxy;
let browser;
let page;
let pageUrl;

const disarm = watchdog("arena e2e", FILE_TIMEOUT, () => server?.child?.kill("SIGKILL"));

before(async () => {
  const port = await freePort();
  server = new ServerProcess({ port, args: SERVER_ARGS, logPath: artifact("e2e-arena-server.log") });
  await server.start();
  proxy = new TcpProxy(port);
  const proxyPort = await proxy.listen();
  const query = new URLSearchParams({
    ws: `ws://127.0.0.1:${proxyPort}/ws`,
    backoffBase: "200",
    backoffMax: "2000",
    pingInterval: "500",
    pongTimeout: "1500",
  });
  pageUrl = `http://127.0.0.1:${port}/arena/?${query}`;
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
});

after(async () => {
  disarm();
  await browser?.close().catch(() => {});
  await proxy?.close().catch(() => {});
  await server?.close().catch(() => {});
});

/** The page's debug hook, as plain data. */
function arena(p = page) {
  return p.evaluate(() => ({
    state: window.__arena.state,
    playerId: window.__arena.playerId,
    resumed: window.__arena.resumed,
    welcomes: window.__arena.welcomes,
    self: window.__arena.self,
    attempt: window.__arena.attempt,
    inputSeq: window.__arena.inputSeq,
    ack: window.__arena.lastState ? window.__arena.lastState.ack : null,
    notice: window.__arena.notice,
    log: window.__arena.log,
  }));
}

function badge(p = page) {
  return p.evaluate(() => {
    const b = document.getElementById("badge");
    return { text: b.textContent, state: b.dataset.state };
  });
}

test("the page loads and the badge shows connected, without a click", { timeout: TEST_TIMEOUT }, async () => {
  const response = await page.goto(pageUrl);
  assert.equal(response.status(), 200);
  await waitInPage(page, "the connection", () => window.__arena.state === "connected");
  assert.deepEqual(await badge(), { text: "Connected", state: "connected" });
  assert.equal(await page.getAttribute("#badge", "aria-live"), "polite");
  assert.equal(await page.isDisabled("#leave"), false, "Leave works with a connection");
  assert.equal(await page.isDisabled("#join"), true);
  const a = await arena();
  assert.ok(Number.isInteger(a.playerId), "a player id from Welcome");
  assert.equal(a.resumed, false);
  assert.equal(await page.evaluate(() => window.__arena.roomType), "arena");
  // The HUD refreshes a few times a second; it must come to show the RTT.
  const rtt = await waitInPage(page, "the HUD to show the RTT", () => {
    const text = document.getElementById("hud-rtt").textContent;
    return /^\d+ ms$/.test(text) && text;
  });
  assert.ok(Number.parseInt(rtt, 10) < 1000, `a loopback RTT: ${rtt}`);
});

test("keyboard input moves the player", { timeout: TEST_TIMEOUT }, async () => {
  const start = (await arena()).self;
  // Move towards the middle, so that the edge of the field cannot stop us.
  const right = start.x < WORLD / 2;
  const key = right ? "ArrowRight" : "ArrowLeft";
  await page.keyboard.down(key);
  const moved = await waitInPage(
    page,
    `the player to move ${right ? "right" : "left"} from x=${start.x}`,
    ({ x, right }) => {
      const self = window.__arena.self;
      return self && (right ? self.x >= x + 40 : self.x <= x - 40) && self;
    },
    { x: start.x, right },
  );
  await page.keyboard.up(key);
  assert.equal(moved.y, start.y, "a horizontal key moves horizontally");
  // Releasing the key stops the player, and the server acknowledges every
  // input the page sent.
  await waitInPage(page, "the acks to catch up", () => {
    const s = window.__arena.lastState;
    return s && s.ack === window.__arena.inputSeq;
  });
  const stopped = (await arena()).self;
  await page.waitForTimeout(300);
  assert.deepEqual((await arena()).self, stopped, "no key, no motion");
});

/**
 * Holds the arrow keys that lead `p`'s player towards `target` until it is
 * close or `ms` have passed, then lets go.
 */
async function steer(p, target, ms) {
  const deadline = Date.now() + ms;
  const down = new Set();
  const set = async (key, on) => {
    if (on && !down.has(key)) {
      down.add(key);
      await p.keyboard.down(key);
    } else if (!on && down.has(key)) {
      down.delete(key);
      await p.keyboard.up(key);
    }
  };
  while (Date.now() < deadline) {
    const self = (await arena(p)).self;
    if (!self) break;
    const dx = target.x - self.x;
    const dy = target.y - self.y;
    if (Math.hypot(dx, dy) < 70) break;
    await set("ArrowRight", dx > 20);
    await set("ArrowLeft", dx < -20);
    await set("ArrowDown", dy > 20);
    await set("ArrowUp", dy < -20);
    await p.waitForTimeout(50);
  }
  for (const key of [...down]) await set(key, false);
}

test("a screenshot of the game in play, with others and a dropped player", { timeout: TEST_TIMEOUT }, async () => {
  const me = (await arena()).self;
  const bots = [];
  for (let i = 0; i < 2; i++) {
    const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
    const bot = await context.newPage();
    await bot.goto(pageUrl);
    await waitInPage(bot, `bot ${i} to connect`, () => window.__arena.state === "connected" && window.__arena.self !== null);
    bots.push(bot);
  }
  // Both bots come near (at different offsets), then one leaves its page
  // without a leave (a close 1001): the server keeps it, dropped.
  await Promise.all([
    steer(bots[0], { x: me.x + 90, y: me.y - 60 }, 8000),
    steer(bots[1], { x: me.x - 100, y: me.y + 70 }, 8000),
  ]);
  const dropped = (await arena(bots[1])).playerId;
  await bots[1].close();
  await waitInPage(
    page,
    "another player and a dropped player in view",
    (id) => {
      const s = window.__arena.lastState;
      const players = s.entities.filter((e) => e.kind === "Player");
      return players.length >= 2 && s.entities.some((e) => e.kind === "DroppedPlayer" && e.id === id);
    },
    dropped,
  );
  // Let interpolation settle on the latest positions before the picture.
  await page.waitForTimeout(300);
  const file = artifact("arena.png");
  await page.screenshot({ path: file });
  assert.ok(statSync(file).size > 10_000, "the screenshot has content");
  const players = await page.evaluate(() => window.__arena.lastState.players);
  assert.equal(players, 3, "the room counts the dropped player too");
});

test("?room=ID joins that room, and ?pace=fast quick-joins a room of its own pace", { timeout: TEST_TIMEOUT }, async () => {
  const roomId = (await page.evaluate(() => window.__arena.roomId));
  const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
  try {
    const byId = await context.newPage();
    await byId.goto(`${pageUrl}&room=${roomId}`);
    await waitInPage(byId, "the join by id", () => window.__arena.state === "connected");
    assert.equal(await byId.evaluate(() => window.__arena.roomId), roomId, "the room asked for");
    const fast = await context.newPage();
    await fast.goto(`${pageUrl}&pace=fast`);
    await waitInPage(fast, "the fast-paced quick join", () => window.__arena.state === "connected");
    assert.notEqual(await fast.evaluate(() => window.__arena.roomId), roomId, "quick join matches on pace");
    // Leaving removes the player at once (the Leave message and close 1000).
    await byId.click("#leave");
    await waitInPage(byId, "the leave", () => window.__arena.state === "stopped");
    assert.match(await byId.textContent("#badge"), /You left the game/);
  } finally {
    await context.close();
  }
});

test("a connection cut while the server runs resumes the same player", { timeout: TEST_TIMEOUT }, async () => {
  const before = await arena();
  assert.equal(before.state, "connected");
  proxy.cut();
  await waitInPage(
    page,
    "the resumed session",
    (w) => window.__arena.state === "connected" && window.__arena.welcomes > w,
    before.welcomes,
  );
  const after = await arena();
  assert.equal(after.playerId, before.playerId, "the same player id comes back");
  assert.equal(after.resumed, true);
  const drops = after.log.slice(before.log.length).filter((s) => s.state === "reconnecting" && s.code === 1006);
  assert.ok(drops.length >= 1, "the cut was seen as an unclean close (1006)");
  await waitInPage(page, "a state of the resumed player", () => window.__arena.self !== null);
  assert.deepEqual(
    { x: (await arena()).self.x, y: (await arena()).self.y },
    { x: before.self.x, y: before.self.y },
    "the player stood still and kept its place while dropped",
  );
});

test("a silent connection is caught by the heartbeat and resumed", { timeout: TEST_TIMEOUT }, async () => {
  const before = await arena();
  assert.ok(proxy.freeze() >= 1, "the page's connection was frozen");
  // Nothing flows now, but the socket stays open: only the missing Pong
  // (pongTimeout 1.5 s) can tell.
  await waitInPage(
    page,
    "the heartbeat to give up and the session to resume",
    (w) => window.__arena.state === "connected" && window.__arena.welcomes > w,
    before.welcomes,
  );
  const after = await arena();
  const timeouts = after.log.slice(before.log.length).filter((s) => s.state === "reconnecting" && s.code === 3000);
  assert.ok(timeouts.length >= 1, "the client closed the dead connection itself, with 3000");
  assert.equal(after.playerId, before.playerId);
  assert.equal(after.resumed, true);
});

test("a killed server is retried with growing back-off, and the page rejoins once it is back", { timeout: TEST_TIMEOUT }, async () => {
  // Record every text the badge shows from here on.
  await page.evaluate(() => {
    window.__badgeTexts = [];
    const b = document.getElementById("badge");
    new MutationObserver(() => window.__badgeTexts.push(b.textContent)).observe(b, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
  const mark = (await arena()).log.length;
  await server.kill();
  await waitInPage(page, "the fourth reconnect attempt", () => window.__arena.attempt >= 4, undefined, 15_000);
  const waits = (await arena()).log.slice(mark).filter((s) => s.state === "reconnecting" && s.retryInMs !== null);
  assert.deepEqual(
    waits.map((s) => s.attempt).slice(0, 4),
    [1, 2, 3, 4],
    "attempt numbers count up",
  );
  assert.deepEqual(
    waits.map((s) => s.retryCapMs).slice(0, 4),
    [200, 400, 800, 1600],
    "the back-off ceiling doubles from backoffBase",
  );
  for (const s of waits) assert.ok(s.retryInMs >= 0 && s.retryInMs <= s.retryCapMs, "each delay is jittered under its ceiling");
  const texts = await page.evaluate(() => window.__badgeTexts);
  for (const n of [1, 2, 3]) {
    assert.ok(
      texts.some((t) => new RegExp(`^Reconnecting \\(attempt ${n}, next try in \\d+\\.\\d s\\)$`).test(t)),
      `the badge showed attempt ${n} and its delay: ${JSON.stringify(texts)}`,
    );
  }
  assert.equal(await page.isDisabled("#leave"), true, "no Leave without a connection");
  assert.equal(await page.isDisabled("#retry"), false, "Retry now is offered");

  await server.start();
  await waitInPage(page, "the page to reconnect to the restarted server", () => window.__arena.state === "connected", undefined, 15_000);
  const after = await arena();
  assert.deepEqual(await badge(), { text: "Connected", state: "connected" });
  // The restarted server has forgotten every token: 4002, then a new player.
  assert.ok(after.log.slice(mark).some((s) => s.code === 4002), "the old token was refused with 4002");
  assert.equal(after.resumed, false);
  assert.match(after.notice, /new player/, "the page says the player is new");
  assert.match(await page.textContent("#notice"), /new player/);
});
