// End-to-end test of the lobby (/) in headless Chromium against the real
// server binary: it shows the server's games with working quick-play and
// private-room links, a public room opened by quick join appears in its
// room list and the row's Join button seats a second player in that room,
// and the join-by-code form explains a malformed or unknown code.
//
// The pages reach the server directly (no proxy: nothing here breaks a
// connection). Every wait is bounded; the file finishes in well under a
// minute. Not for the game pages' own behaviour (arena.test.mjs,
// four.test.mjs).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { ServerProcess, artifact, freePort, launchChromium, waitInPage, watchdog } from "./harness.mjs";

const TEST_TIMEOUT = 25_000;
const FILE_TIMEOUT = 80_000;

let server;
let browser;
let origin;

const disarm = watchdog("lobby e2e", FILE_TIMEOUT, () => server?.child?.kill("SIGKILL"));

before(async () => {
  const port = await freePort();
  server = new ServerProcess({ port, args: ["--seed", "7"], logPath: artifact("e2e-lobby-server.log") });
  await server.start();
  origin = `http://127.0.0.1:${port}`;
  browser = await launchChromium();
});

after(async () => {
  disarm();
  await browser?.close().catch(() => {});
  await server?.close().catch(() => {});
});

/** A fresh page in a context of its own (its own sessionStorage). */
async function freshPage() {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  return page;
}

test("the lobby shows every game the server hosts, with links that play it", { timeout: TEST_TIMEOUT }, async () => {
  const page = await freshPage();
  const response = await page.goto(`${origin}/`);
  assert.equal(response.status(), 200);
  await page.locator(".card").first().waitFor();
  const cards = await page.locator(".card").evaluateAll((cs) => cs.map((c) => c.dataset.type));
  assert.deepEqual(cards.sort(), ["arena", "four"]);
  const four = page.locator('.card[data-type="four"]');
  assert.equal(await four.getByRole("heading").textContent(), "Four in a Row");
  assert.equal(await four.getByRole("link", { name: "Quick play" }).getAttribute("href"), "/four/");
  assert.equal(await four.getByRole("link", { name: "Private room" }).getAttribute("href"), "/four/?create=private");
  const arena = page.locator('.card[data-type="arena"]');
  assert.equal(await arena.getByRole("link", { name: "Fast pace" }).getAttribute("href"), "/arena/?pace=fast", "quick join by pace");
  // Quick play opens the game's page, which connects by itself.
  await arena.getByRole("link", { name: "Quick play" }).click();
  await page.waitForURL(`${origin}/arena/`);
  await waitInPage(page, "the arena to connect", () => window.__arena.state === "connected");
  await page.context().close();
});

test("a public room appears in the list, and its Join button seats a second player there", { timeout: TEST_TIMEOUT }, async () => {
  const host = await freshPage();
  await host.goto(`${origin}/four/`);
  await waitInPage(host, "the host's quick join", () => window.__four.connection === "connected" && window.__four.status?.type === "Waiting");
  const roomId = await host.evaluate(() => window.__four.roomId);

  const guest = await freshPage();
  await guest.goto(`${origin}/`);
  const row = guest.locator(`tr[data-room="${roomId}"]`);
  // The list refreshes itself; the button does it at once.
  await guest.getByRole("button", { name: "Refresh" }).click();
  await row.waitFor({ timeout: 10_000 });
  assert.deepEqual(
    await row.locator("td").allTextContents(),
    ["Four in a Row", `#${roomId}`, "1 / 2", "Waiting", "JoinWatch"],
  );
  // Watch opens the game's page as a spectator of this room.
  const watch = await guest.getByRole("link", { name: `Watch Four in a Row room ${roomId}` }).getAttribute("href");
  const watchUrl = new URL(watch, origin);
  assert.equal(watchUrl.pathname, "/four/");
  assert.equal(watchUrl.searchParams.get("watch"), "live");
  assert.equal(new URL(watchUrl.searchParams.get("ws")).pathname, `/watch/${roomId}/ws`);
  await guest.screenshot({ path: artifact("lobby.png"), fullPage: true });
  await guest.getByRole("link", { name: `Join Four in a Row room ${roomId}` }).click();
  await guest.waitForURL(`${origin}/four/?room=${roomId}`);
  await waitInPage(guest, "the guest at the table", () => window.__four.connection === "connected" && window.__four.status?.type === "Playing");
  assert.equal(await guest.evaluate(() => window.__four.roomId), roomId, "the listed room");
  assert.equal(await guest.evaluate(() => window.__four.seat), "Yellow");
  await waitInPage(host, "the host to see the game start", () => window.__four.status?.type === "Playing");

  // A full room is locked, and the lobby no longer offers it.
  await guest.goBack();
  await guest.getByRole("button", { name: "Refresh" }).click();
  await waitInPage(guest, "the full room to leave the list", (id) => !document.querySelector(`tr[data-room="${id}"]`), roomId);
  await host.context().close();
  await guest.context().close();
});

test("the join-by-code form explains a malformed or unknown code", { timeout: TEST_TIMEOUT }, async () => {
  const page = await freshPage();
  await page.goto(`${origin}/`);
  const input = page.getByLabel("Invite code", { exact: true });
  const join = page.getByRole("button", { name: "Join room" });
  await input.fill("hello");
  await join.click();
  await waitInPage(page, "the format error", () => window.__lobby.error.includes("8 letters and digits"));
  assert.match(await page.getByRole("alert").textContent(), /like K7M2-XQ9P/);
  // Well formed, but no room has it: the server says so (404).
  await input.fill("ZZZZ-2222");
  await join.click();
  await waitInPage(page, "the not-found error", () => window.__lobby.error.includes("No open room has that code"));
  assert.equal(new URL(page.url()).pathname, "/", "the lobby stays put");
  await page.context().close();
});

test("a private room's page opened from the lobby shows its code, and it is never listed", { timeout: TEST_TIMEOUT }, async () => {
  const page = await freshPage();
  await page.goto(`${origin}/`);
  await page.locator('.card[data-type="four"]').getByRole("link", { name: "Private room" }).click();
  await page.waitForURL(`${origin}/four/?create=private`);
  await waitInPage(page, "the private room", () => window.__four?.connection === "connected" && window.__four.inviteCode !== null);
  const roomId = await page.evaluate(() => window.__four.roomId);
  const listing = await (await fetch(`${origin}/rooms`)).json();
  assert.ok(!listing.some((r) => r.id === roomId), "private rooms are not listed");
  assert.equal(await page.isVisible("#invite"), true);
  await page.context().close();
});
