// End-to-end test of watching in headless Chromium against the real server
// binary: two players play the arena on their pages, a spectator watches
// them live through the arena's own page (/watch/ROOM/ws), and then the
// recording of their room plays in the viewer (/replay/ID): the arena's
// page in a frame shows the followed player's view, ticks advance, pause
// holds them, 4x plays faster, seeking goes back, and following the other
// player shows that player's view. A screenshot of the viewer is kept
// (artifacts/replay.png).
//
// The server records into a fresh directory of its own (--record). The
// tests run in order and share one server and one browser; every wait is
// bounded and the file finishes in well under two minutes.
//
// Needs: the server binary (ARENA_SERVER_BIN, default target/release/server)
// and Chromium (CHROMIUM_BIN, default /usr/bin/chromium); scripts/test-web
// provides both.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServerProcess, artifact, freePort, launchChromium, waitInPage, watchdog } from "./harness.mjs";

/** A small field, so that the players meet; its side, in world units. */
const WORLD = 600;
const TEST_TIMEOUT = 30_000;
const FILE_TIMEOUT = 110_000;

let server;
let browser;
let context;
let base;
let players = [];
let recordDir;

const disarm = watchdog("replay e2e", FILE_TIMEOUT, () => server?.child?.kill("SIGKILL"));

before(async () => {
  recordDir = mkdtempSync(path.join(os.tmpdir(), "replay-e2e-"));
  const port = await freePort();
  const args = ["--seed", "7", "--world-width", `${WORLD}`, "--world-height", `${WORLD}`, "--record", recordDir, "--record-keyframe-every", "1s"];
  server = new ServerProcess({ port, args, logPath: artifact("e2e-replay-server.log") });
  await server.start();
  base = `http://127.0.0.1:${port}`;
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
});

after(async () => {
  disarm();
  await browser?.close().catch(() => {});
  await server?.close().catch(() => {});
  if (recordDir) rmSync(recordDir, { recursive: true, force: true });
});

/** The arena page's view in `frame` (a page or a frame): who and when. */
function arenaView(frame) {
  return frame.evaluate(() => ({
    state: window.__arena.state,
    playerId: window.__arena.playerId,
    tick: window.__arena.lastState ? window.__arena.lastState.tick : null,
    self: window.__arena.self,
  }));
}

test("two players play, and a spectator follows one of them live", { timeout: TEST_TIMEOUT }, async () => {
  for (let i = 0; i < 2; i++) {
    const page = await context.newPage();
    page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
    await page.goto(`${base}/arena/`);
    await waitInPage(page, "a player connected", () => window.__arena.state === "connected" && window.__arena.self);
    const view = await arenaView(page);
    // Towards the middle, so that the edge of the field cannot stop it.
    const key = view.self.y < WORLD / 2 ? "ArrowDown" : "ArrowUp";
    players.push({ page, key, id: view.playerId });
  }
  for (const p of players) await p.page.keyboard.down(p.key);
  const room = await players[0].page.evaluate(() => window.__arena.roomId);
  assert.equal(await players[1].page.evaluate(() => window.__arena.roomId), room, "one room");

  const watcher = await context.newPage();
  const ws = `ws://${new URL(base).host}/watch/${room}/ws?follow=${players[1].id}`;
  await watcher.goto(`${base}/arena/?watch=live&ws=${encodeURIComponent(ws)}`);
  await waitInPage(watcher, "the spectator's first view", () => window.__arena.state === "connected" && window.__arena.self);
  const seen = await arenaView(watcher);
  assert.equal(seen.playerId, players[1].id, "the spectator follows the second player");
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^game_spectators 1$/m);
  assert.match(metrics, /^game_players 2$/m, "a spectator takes no seat");
  // It sees that player move as the player does.
  await waitInPage(watcher, "the followed player moving", (y) => window.__arena.self && Math.abs(window.__arena.self.y - y) > 20, seen.self.y);
  await watcher.close();
  // Play on long enough for a few keyframes.
  await new Promise((r) => setTimeout(r, 2500));
  for (const p of players) await p.page.keyboard.up(p.key);
});

test("the recording plays in the viewer: pause, speed, seek and follow", { timeout: TEST_TIMEOUT }, async () => {
  const list = await (await fetch(`${base}/replays`)).json();
  assert.equal(list.length, 1, "one room, one recording");
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${base}/replay/${list[0].id}`);
  await waitInPage(page, "the recording's facts", () => window.__replay.info !== null);
  const info = await page.evaluate(() => window.__replay.info);
  assert.equal(info.room_type, "arena");
  assert.deepEqual(info.players.map((p) => p.id), players.map((p) => p.id));
  const frame = page.frameLocator("#game");
  const game = () => page.frames().find((f) => f.url().includes("/arena/"));
  await waitInPage(page, "the game page in the frame", () => document.getElementById("game").contentWindow.__arena?.state === "connected");
  const first = await arenaView(game());
  assert.equal(first.playerId, players[0].id, "follows the first player by default");
  assert.equal(await game().isHidden("#leave"), true, "a viewer's page has no player buttons");
  await waitInPage(game(), "ticks to advance", (t) => window.__arena.lastState && window.__arena.lastState.tick > t + 10, first.tick ?? 0);
  await frame.locator("canvas").waitFor();
  await page.screenshot({ path: artifact("replay.png") });

  // Pause: the ticks stop.
  await page.click("#play");
  await waitInPage(page, "paused", () => window.__replay.control && window.__replay.control.paused);
  const pausedAt = (await arenaView(game())).tick;
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await arenaView(game())).tick, pausedAt, "no tick while paused");
  assert.equal(await page.textContent("#play"), "Play");

  // Seek back to near the start, and play at 4x.
  await page.evaluate((t) => {
    const seek = document.getElementById("seek");
    seek.value = String(t);
    seek.dispatchEvent(new Event("change"));
  }, info.start_tick + 5);
  await waitInPage(game(), "the seek back", (t) => window.__arena.lastState.tick === t, info.start_tick + 5);
  await page.selectOption("#speed", "4");
  await page.click("#play");
  await waitInPage(page, "4x", () => window.__replay.control && window.__replay.control.speed === 4 && !window.__replay.control.paused);
  const t0 = (await arenaView(game())).tick;
  const started = Date.now();
  await waitInPage(game(), "30 ticks", (t) => window.__arena.lastState.tick >= t + 30, t0);
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 1000, `30 ticks of a 30 Hz room at 4x take about 250 ms, not ${elapsed} ms`);

  // Follow the other player: the frame shows that player's view, going on
  // from where the stream was.
  const before = (await arenaView(game())).tick;
  await page.selectOption("#follow", String(players[1].id));
  await waitInPage(page, "the frame following the other player", (id) => document.getElementById("game").contentWindow.__arena?.playerId === id, players[1].id);
  await waitInPage(game(), "the other player's states", () => window.__arena.self !== null);
  assert.ok((await arenaView(game())).tick >= before, "goes on, not from the start");
});
