// End-to-end test of four in a row (/four/) in headless Chromium against
// the real server binary, with two players in two browser contexts: A
// opens /four/?create=private and reads the invite code off its page; B
// opens the lobby, types the code into the join-by-code form and lands at
// the table; they play a game to a win by clicking columns, ask for a
// rematch, and then B's network drops mid-game (its proxy connection is
// cut and kept down while the server runs) while A moves. When B is back,
// no move is lost: both pages' move logs and boards agree with the
// server's state, every Moved number appears once and in order, and the
// game goes on.
//
// Each player reaches the server through its own TCP proxy (harness.mjs),
// so one can be cut without the other. Pages are told to use it with
// ?ws=, and to back off and ping quickly (session.js documents the
// options; the lobby passes them on to the game page it opens). The tests
// run in order and share one server and one browser; every wait is
// bounded. Not for the rules (games/four/src/lib.rs has those) or the
// session's state machine (test/session.test.mjs).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { ServerProcess, TcpProxy, artifact, fourPage, freePort, launchChromium, waitInPage, watchdog } from "./harness.mjs";

/** Per-test bound; a passing test takes a few seconds. */
const TEST_TIMEOUT = 30_000;

/** Bound on the whole file (see arena.test.mjs). */
const FILE_TIMEOUT = 110_000;

let server;
let browser;
let origin;
/** The two players: { name, proxy, page, query }. */
const A = { name: "A" };
const B = { name: "B" };

const disarm = watchdog("four e2e", FILE_TIMEOUT, () => server?.child?.kill("SIGKILL"));

function queryFor(proxyPort) {
  return new URLSearchParams({
    ws: `ws://127.0.0.1:${proxyPort}/ws`,
    backoffBase: "200",
    backoffMax: "1000",
    pingInterval: "500",
    pongTimeout: "1500",
  });
}

before(async () => {
  const port = await freePort();
  server = new ServerProcess({ port, args: ["--seed", "7"], logPath: artifact("e2e-four-server.log") });
  await server.start();
  origin = `http://127.0.0.1:${port}`;
  browser = await launchChromium();
  for (const player of [A, B]) {
    player.proxy = new TcpProxy(port);
    player.query = queryFor(await player.proxy.listen());
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    player.page = await context.newPage();
    player.page.on("pageerror", (e) => console.error(`page ${player.name} error: ${e.message}`));
  }
});

after(async () => {
  disarm();
  await browser?.close().catch(() => {});
  for (const player of [A, B]) await player.proxy?.close().catch(() => {});
  await server?.close().catch(() => {});
});

/** A player's page as plain data (window.__four). */
function four(player) {
  return fourPage(player.page);
}

/** The player whose turn it is, from A's page. */
async function mover() {
  const a = await four(A);
  return a.turn === a.seat ? A : B;
}

/** Both pages' counts of this game's moves. */
async function moveCounts() {
  return [(await four(A)).moves.length, (await four(B)).moves.length];
}

/** Waits until `player`'s page has seen `n` moves of the current game. */
function waitMoves(player, n, timeoutMs = 10_000) {
  return waitInPage(player.page, `${player.name} to see ${n} moves`, (n) => window.__four.moves.length >= n && window.__four.state.moves >= n, n, timeoutMs);
}

/**
 * The player to move clicks `column`; returns once both pages show the
 * move in their logs and their states.
 */
async function play(player, column) {
  const before = (await four(player)).moves.length;
  await waitInPage(player.page, `${player.name}'s column ${column} to be clickable`, (c) => !document.getElementById(`col-${c}`).disabled, column);
  await player.page.click(`#col-${column}`);
  await Promise.all([waitMoves(A, before + 1), waitMoves(B, before + 1)]);
}

/** The board a move log builds: what the Moved events say happened. */
function boardFrom(moves) {
  const board = new Array(42).fill(0);
  for (const m of moves) board[m.row * 7 + m.column] = m.seat === "Red" ? 1 : 2;
  return board;
}

/**
 * Everything both pages say agrees: the same moves, numbered 1, 2, 3…
 * once each, that build exactly the board the server's state shows.
 */
async function assertAgree(when) {
  const a = await four(A);
  const b = await four(B);
  assert.deepEqual(a.moves, b.moves, `${when}: both move logs`);
  assert.deepEqual(a.board, b.board, `${when}: both boards`);
  assert.deepEqual(
    a.moves.map((m) => m.number),
    a.moves.map((_, i) => i + 1),
    `${when}: every Moved number once, in order`,
  );
  assert.equal(a.stateMoves, a.moves.length, `${when}: the server counts the moves the log has`);
  assert.deepEqual(boardFrom(a.moves), a.board, `${when}: the log builds the server's board`);
  for (const p of [a, b]) {
    assert.deepEqual(
      p.events.map((e) => e.seq),
      p.events.map((_, i) => i + 1),
      `${when}: events reached the page once each, in order`,
    );
  }
}

test("A creates a private room and its page shows the invite code and link", { timeout: TEST_TIMEOUT }, async () => {
  const response = await A.page.goto(`${origin}/four/?create=private&${A.query}`);
  assert.equal(response.status(), 200);
  await waitInPage(A.page, "A's private room", () => window.__four.connection === "connected" && window.__four.state !== null);
  const a = await four(A);
  assert.equal(a.seat, "Red", "the first to sit is red");
  assert.equal(a.status.type, "Waiting");
  assert.match(a.inviteCode, /^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{8}$/);
  assert.equal(await A.page.isVisible("#invite"), true, "the invite is shown while the seat is free");
  assert.equal((await A.page.textContent("#invite-code")).trim(), a.inviteCode, "the code, on the page");
  assert.equal(await A.page.inputValue("#invite-link"), `${origin}/four/?code=${a.inviteCode}`);
  assert.equal(await A.page.textContent("#turn"), "Waiting for an opponent…");
  assert.equal(await A.page.getAttribute("#badge", "aria-live"), "polite");
});

test("B types the code into the lobby's form and lands at A's table", { timeout: TEST_TIMEOUT }, async () => {
  const code = (await A.page.textContent("#invite-code")).trim();
  await B.page.goto(`${origin}/?${B.query}`);
  await B.page.getByRole("link", { name: "Quick play" }).first().waitFor();
  // Typed the way people type codes they were told: lower case, a dash.
  await B.page.getByLabel("Invite code", { exact: true }).fill(`${code.slice(0, 4).toLowerCase()}-${code.slice(4).toLowerCase()}`);
  await B.page.getByRole("button", { name: "Join room" }).click();
  await B.page.waitForURL(/\/four\/\?/, { timeout: 10_000 });
  const url = new URL(B.page.url());
  assert.equal(url.searchParams.get("code"), code);
  assert.equal(url.searchParams.get("ws"), B.query.get("ws"), "the lobby passed the session options on");
  await waitInPage(B.page, "B at the table, the game on", () => window.__four.connection === "connected" && window.__four.status?.type === "Playing");
  await waitInPage(A.page, "A to see the game start", () => window.__four.status?.type === "Playing");
  const [a, b] = [await four(A), await four(B)];
  assert.equal(b.seat, "Yellow");
  assert.equal(b.roomId, a.roomId, "the same room");
  assert.equal(b.inviteCode, a.inviteCode);
  assert.equal(await A.page.isVisible("#invite"), false, "no invite once the table is full");
  assert.equal(a.turn, b.turn);
  const first = a.turn === "Red" ? A : B;
  assert.equal(await first.page.textContent("#turn"), "Your turn");
  // Out of turn, the board cannot be clicked.
  const second = first === A ? B : A;
  assert.equal(await second.page.isDisabled("#col-3"), true);
});

test("they play to a win by clicking columns", { timeout: TEST_TIMEOUT }, async () => {
  const first = await mover();
  const second = first === A ? B : A;
  // The first player stacks column 0, the second column 1: four in a
  // column for the first on the seventh move.
  for (let i = 0; i < 3; i++) {
    await play(first, 0);
    await play(second, 1);
  }
  await play(first, 0);
  for (const p of [A, B]) {
    await waitInPage(p.page, `${p.name} to see the win`, () => window.__four.status?.type === "Won");
  }
  const winner = await four(first);
  assert.equal(winner.status.seat, winner.seat);
  assert.deepEqual(winner.status.cells, [0, 7, 14, 21], "the winning line, bottom up in column 0");
  assert.equal(await first.page.textContent("#turn"), "You win!");
  assert.equal(await second.page.textContent("#turn"), `${winner.seat} wins`);
  assert.equal((await four(second)).seats.find((s) => s.wins === 1).player, winner.playerId, "the score");
  assert.match(await second.page.textContent(`.seat[data-seat="${winner.seat}"] .wins`), /^1 win$/);
  await assertAgree("after the win");
  assert.equal((await four(A)).moves.length, 7);
  assert.ok((await four(A)).events.some((e) => e.type === "Won"), "a Won event");
  await first.page.screenshot({ path: artifact("four.png") });
});

test("both ask for a rematch and a new game starts", { timeout: TEST_TIMEOUT }, async () => {
  const before = await four(A);
  assert.equal(await A.page.isDisabled("#rematch"), false);
  await A.page.click("#rematch");
  await waitInPage(B.page, "B to see A's rematch request", () => document.getElementById("rematch").textContent === "Accept rematch");
  await B.page.click("#rematch");
  for (const p of [A, B]) {
    await waitInPage(p.page, `${p.name} in game 2`, () => window.__four.state?.game === 2 && window.__four.status.type === "Playing");
  }
  const after = await four(A);
  // Game 1's winner moved first in it; the rematch starts with the other seat.
  assert.notEqual(after.turn, before.status.seat, "the other seat starts the rematch");
  assert.deepEqual(after.moves, [], "a fresh log for the new game");
  assert.ok(after.board.every((c) => c === 0), "an empty board");
  assert.equal(after.allMoves.length, 7, "the first game's moves are kept, as game 1's");
});

test("a network drop mid-game loses no move", { timeout: TEST_TIMEOUT }, async () => {
  // A few moves first, so there is a game to lose.
  let p = await mover();
  await play(p, 3);
  p = await mover();
  await play(p, 3);
  await assertAgree("before the drop");
  const welcomesBefore = (await four(B)).welcomes;
  const bSeat = (await four(B)).seat;
  const aSeat = (await four(A)).seat;
  if ((await mover()) === B) await play(B, 4);
  // Now it is A's turn. B's network goes down: its connection is reset
  // and it cannot reconnect until the test lets it.
  B.proxy.refusing = true;
  B.proxy.cut();
  await waitInPage(A.page, "A to see B drop", (seat) => window.__four.state.seats.find((s, i) => ["Red", "Yellow"][i] === seat).connected === false, bSeat);
  assert.equal(await A.page.textContent(`.seat[data-seat="${bSeat}"] .away`), "reconnecting…", "A sees B reconnecting");
  assert.ok((await four(A)).events.some((e) => e.type === "Dropped" && e.seat === bSeat));
  // A moves while B is away: B's Moved event waits on the server.
  const n = (await four(A)).moves.length;
  await A.page.click("#col-5");
  await waitMoves(A, n + 1);
  await waitInPage(A.page, "A's page to say B is reconnecting", (seat) => document.getElementById("turn").textContent === `${seat} is reconnecting…`, bSeat);
  assert.equal((await four(B)).moves.length, n, "B has not seen the move yet");
  assert.notEqual((await four(B)).connection, "connected");
  // B's network comes back: it resumes, and the server replays the move.
  B.proxy.refusing = false;
  await waitInPage(
    B.page,
    "B to resume and see the move made while it was away",
    ({ w, n }) => window.__four.connection === "connected" && window.__four.welcomes > w && window.__four.moves.length === n + 1 && window.__four.state.moves === n + 1,
    { w: welcomesBefore, n },
    15_000,
  );
  const b = await four(B);
  assert.equal(b.resumed, true, "the same player, resumed");
  assert.equal(b.seat, bSeat, "in the same seat");
  await waitInPage(A.page, "A to see B back", (seat) => window.__four.state.seats.find((s, i) => ["Red", "Yellow"][i] === seat).connected, bSeat);
  await assertAgree("after the drop");
  // And the game goes on: B moves, both see it.
  assert.equal((await four(B)).turn, bSeat);
  await play(B, 6);
  await assertAgree("after B's next move");
  assert.equal((await four(A)).turn, aSeat);
  assert.equal((await four(B)).lastEvent, (await four(B)).events.at(-1).seq, "the page's last event is the session's");
});
