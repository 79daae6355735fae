// End-to-end test of place's page (/place/) in headless Chromium against
// the release place-server binary: player A opens /place/?size=16, picks a
// colour and clicks a pixel, and sees it painted; player B, in another
// browser context, quick-joins the same room and finds the pixel on its
// canvas; B paints one and A sees it arrive; the room list shows the
// paint count. Self-contained on purpose (it does not import
// server/web/e2e/harness.mjs, which is being rewritten), in the same
// style: a free port, bounded waits that explain themselves, a watchdog.
//
// Run (after `cargo build --release -p place` and, once, `npm ci` in
// server/web for playwright-core):
//   node --test examples/place/web/e2e.test.mjs
// PLACE_SERVER_BIN and CHROMIUM_BIN override the binaries' paths.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const SERVER_BIN = process.env.PLACE_SERVER_BIN || path.join(REPO, "target/release/place-server");
const CHROMIUM_BIN = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const SIZE = 16;

/** playwright-core from wherever it is installed: here, or server/web's. */
async function chromium() {
  try {
    return (await import("playwright-core")).chromium;
  } catch {
    return createRequire(path.join(REPO, "server/web/package.json"))("playwright-core").chromium;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let server;
let browser;
let origin;
const pages = {};
const log = [];

// Whatever hangs, the file ends within a minute and the server goes too.
const watchdog = setTimeout(() => {
  console.error(`place e2e: still running after 60 s; server log:\n${log.join("")}`);
  server?.kill("SIGKILL");
  process.exit(1);
}, 60_000);
watchdog.unref();

before(async () => {
  assert.ok(existsSync(SERVER_BIN), `${SERVER_BIN} not found: cargo build --release -p place`);
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  server = spawn(SERVER_BIN, ["--listen", `127.0.0.1:${port}`, "--seed", "7"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  server.stdout.on("data", (d) => log.push(String(d)));
  server.stderr.on("data", (d) => log.push(String(d)));
  const deadline = Date.now() + 15_000;
  while (!(await fetch(`${origin}/healthz`).then((r) => r.ok, () => false))) {
    assert.ok(Date.now() < deadline && server.exitCode === null, `the server did not start:\n${log.join("")}`);
    await sleep(50);
  }
  browser = await (await chromium()).launch({
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
    timeout: 30_000,
  });
});

after(async () => {
  clearTimeout(watchdog);
  await browser?.close().catch(() => {});
  server?.kill("SIGTERM");
});

/** Opens /place/?size=16 for a new player in its own browser context. */
async function open(name) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page ${name}: ${e.message}`));
  await page.goto(`${origin}/place/?size=${SIZE}&backoffBase=200`);
  pages[name] = page;
  return page;
}

/** Waits (bounded) until `fn` is true in the page; the failure shows window.__place. */
async function until(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: 10_000, polling: 50 });
  } catch (e) {
    const hook = await page.evaluate(() => JSON.stringify({ ...window.__place, canvas: undefined, state: undefined })).catch(() => "gone");
    throw new Error(`timed out waiting for ${what}; page: ${hook}\n${e.message}`);
  }
}

/** Picks `color` and clicks pixel (x, y) once the page may paint. */
async function paint(page, x, y, color) {
  await until(page, "the page to be ready to paint", () => window.__place.ready);
  await page.click(`#color-${color}`);
  const box = await page.locator("#canvas").boundingBox();
  await page.click("#canvas", { position: { x: ((x + 0.5) * box.width) / SIZE, y: ((y + 0.5) * box.height) / SIZE } });
}

const at = (x, y) => y * SIZE + x;

test("a click paints the pixel", async () => {
  const a = await open("A");
  await paint(a, 3, 5, 2);
  await until(a, "pixel (3, 5) to be colour 2 in the state", (i) => window.__place.state?.canvas[i] === 2 && window.__place.state.pixels === 1, at(3, 5));
  assert.equal((await a.evaluate(() => window.__place.canvas))[at(3, 5)], 2);
  assert.match(await a.locator("#cooldown").textContent(), /Next pixel in|Ready/);
});

test("a second player sees the pixel, and the first sees theirs", async () => {
  const b = await open("B");
  await until(b, "B to get the canvas with A's pixel", (i) => window.__place.state?.canvas[i] === 2, at(3, 5));
  const [roomA, roomB] = await Promise.all([pages.A, b].map((p) => p.evaluate(() => window.__place.roomId)));
  assert.equal(roomA, roomB, "quick join with size=16 found A's room");
  await paint(b, 10, 12, 5);
  await until(pages.A, "A to see B's pixel", (i) => window.__place.canvas[i] === 5 && window.__place.state.painted === 2, at(10, 12));
});

test("the room list shows the paint count", async () => {
  const rooms = await (await fetch(`${origin}/rooms?type=place`)).json();
  const room = rooms.find((r) => r.type === "place");
  assert.deepEqual(room?.metadata, { painted: "2", size: String(SIZE) }, JSON.stringify(rooms));
  assert.equal(room.players, 2);
});
