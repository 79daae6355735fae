// Helpers for the end-to-end tests (arena.test.mjs, four.test.mjs,
// lobby.test.mjs, cluster.test.mjs): the real server binary as a child
// process on a free loopback port, a Redis server for a cluster's room
// directory, a TCP proxy that a test can cut, freeze or close to new
// connections to break one browser's connection while the server keeps
// running, Chromium launched the way this machine needs, a watchdog that
// bounds a whole file, and bounded waits that explain themselves.
//
// Not a test itself (no *.test.mjs name), and not for unit tests, which
// need none of this.

import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

/** The repository's root. */
export const REPO = fileURLToPath(new URL("../../../", import.meta.url));

/** Where screenshots and server logs go; CI keeps them after a failure. */
export const ARTIFACTS = path.join(REPO, "artifacts");

/** The server binary: ARENA_SERVER_BIN, default target/release/server. */
export const SERVER_BIN = process.env.ARENA_SERVER_BIN
  ? path.resolve(process.env.ARENA_SERVER_BIN)
  : path.join(REPO, "target/release/server");

/** Chromium: CHROMIUM_BIN, default Debian's /usr/bin/chromium. */
export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

/**
 * redis-server: REDIS_SERVER_BIN, else the first on PATH, else null. A test
 * that needs it fails when it is null (see RedisProcess); it is never
 * skipped.
 */
export const REDIS_BIN = process.env.REDIS_SERVER_BIN
  ? path.resolve(process.env.REDIS_SERVER_BIN)
  : (process.env.PATH || "")
      .split(path.delimiter)
      .filter(Boolean)
      .map((dir) => path.join(dir, "redis-server"))
      .find((candidate) => existsSync(candidate)) ?? null;

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function healthz(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/healthz", timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
  });
}

/**
 * The server binary, run as a child process. Its output is appended to
 * `logPath`, so a failed run can be read afterwards.
 */
export class ServerProcess {
  constructor({ bin = SERVER_BIN, port, args = [], logPath }) {
    if (!existsSync(bin)) {
      throw new Error(`server binary ${bin} not found: build it (cargo build --release -p server) or set ARENA_SERVER_BIN`);
    }
    this.bin = bin;
    this.port = port;
    // Under scripts/test-web the game server records its rooms, one
    // directory per port, for `server replay --verify` afterwards.
    const recordDir = process.env.E2E_RECORD_DIR;
    const records = recordDir && bin === SERVER_BIN && !args.includes("--record");
    this.args = records ? [...args, "--record", path.join(recordDir, String(port))] : args;
    this.log = createWriteStream(logPath, { flags: "a" });
    this.child = null;
  }

  /** Starts the server and waits (bounded) until /healthz answers. */
  async start(timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    // The port may still be held for a moment after a kill; retry the bind.
    while (Date.now() < deadline) {
      const child = spawn(this.bin, ["--listen", `127.0.0.1:${this.port}`, ...this.args], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "info", NO_COLOR: "1" },
      });
      this.log.write(`\n=== started pid ${child.pid} at ${new Date().toISOString()}\n`);
      child.stdout.pipe(this.log, { end: false });
      child.stderr.pipe(this.log, { end: false });
      let exited = false;
      child.once("exit", () => (exited = true));
      while (!exited && Date.now() < deadline) {
        if (await healthz(this.port)) {
          this.child = child;
          return;
        }
        await sleep(50);
      }
      if (!exited) child.kill("SIGKILL");
      await sleep(200);
    }
    throw new Error(`the server did not come up on port ${this.port} within ${timeoutMs} ms`);
  }

  /** Kills the server at once (no graceful shutdown) and waits for it to exit. */
  async kill() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await Promise.race([exited, sleep(5000)]);
  }

  async close() {
    await this.kill();
    await new Promise((r) => this.log.end(r));
  }
}

/**
 * Fails, saying how to fix it, unless the server binary has the flag
 * `flag` (a build from before a feature would fail later in a less
 * telling way).
 */
export function requireServerFlag(flag, bin = SERVER_BIN) {
  if (!existsSync(bin)) {
    throw new Error(`server binary ${bin} not found: build it (cargo build --release -p server) or set ARENA_SERVER_BIN`);
  }
  const help = spawnSync(bin, ["--help"], { encoding: "utf8", timeout: 10_000 });
  if (!`${help.stdout}`.includes(flag)) {
    throw new Error(`server binary ${bin} has no ${flag} option: rebuild it (cargo build --release -p server)`);
  }
}

/**
 * Sends one command to a Redis server and returns its reply as text (a
 * simple string, an integer or a bulk string; null for a nil). Just enough
 * RESP for readiness checks; an error reply rejects.
 */
export function redisCommand(port, args, timeoutMs = 1000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let data = "";
    const done = (err, value) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`no reply from Redis on port ${port} in ${timeoutMs} ms`)));
    socket.on("error", (e) => done(e));
    socket.on("data", (chunk) => {
      data += chunk.toString("utf8");
      const reply = parseResp(data);
      if (reply !== undefined) done(reply instanceof Error ? reply : null, reply);
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);
  });
}

/** A complete RESP reply from `text`, or undefined while it is incomplete. */
function parseResp(text) {
  const end = text.indexOf("\r\n");
  if (end < 0) return undefined;
  const [kind, head] = [text[0], text.slice(1, end)];
  if (kind === "+" || kind === ":") return head;
  if (kind === "-") return new Error(`Redis: ${head}`);
  if (kind === "$") {
    const n = Number(head);
    if (n < 0) return null;
    return text.length >= end + 2 + n + 2 ? text.slice(end + 2, end + 2 + n) : undefined;
  }
  return new Error(`unexpected Redis reply ${JSON.stringify(text.slice(0, 40))}`);
}

/**
 * A Redis server as a child process on a free loopback port, with nothing
 * on disk (no snapshots, no append-only file), for a cluster's room
 * directory. Output is appended to `logPath`.
 */
export class RedisProcess {
  constructor({ bin = REDIS_BIN, logPath }) {
    if (!bin || !existsSync(bin)) {
      throw new Error(
        "redis-server not found (on PATH, or at REDIS_SERVER_BIN): the cluster test needs it for the room directory. " +
          "Install Debian's redis-server package (scripts/test and scripts/test-web install it).",
      );
    }
    this.bin = bin;
    this.log = createWriteStream(logPath, { flags: "a" });
    this.child = null;
    this.port = null;
  }

  /** Starts Redis and waits (bounded) until it answers PING. */
  async start(timeoutMs = 10_000) {
    this.port = await freePort();
    const child = spawn(this.bin, ["--port", `${this.port}`, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.log.write(`\n=== started pid ${child.pid} on port ${this.port} at ${new Date().toISOString()}\n`);
    child.stdout.pipe(this.log, { end: false });
    child.stderr.pipe(this.log, { end: false });
    const deadline = Date.now() + timeoutMs;
    let last = null;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}; see its log`);
      try {
        if ((await redisCommand(this.port, ["PING"])) === "PONG") return;
      } catch (e) {
        last = e;
      }
      await sleep(50);
    }
    throw new Error(`redis-server did not answer PING on port ${this.port} within ${timeoutMs} ms (${last?.message})`);
  }

  /** redis://127.0.0.1:PORT, for --directory. */
  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  async close() {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await Promise.race([exited, sleep(5000)]);
    }
    await new Promise((r) => this.log.end(r));
  }
}

/**
 * A TCP proxy from a local port to the server. `cut()` resets every
 * connection through it (the browser sees a close without a close frame,
 * 1006, and the server sees the socket die); `freeze()` stops forwarding on
 * every current connection while keeping the sockets open, so that only a
 * heartbeat can tell the connection is dead. New connections flow unless
 * `refusing` is set. Give each browser page its own proxy to break one
 * player's connection and not the other's.
 */
export class TcpProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    /** Connections that forward. */
    this.pairs = new Set();
    /** Connections that `freeze()` stopped; they stay open until close(). */
    this.frozen = new Set();
    /**
     * While true, new connections are reset at once, as if the network
     * were down: a test holds a client away for as long as it needs.
     */
    this.refusing = false;
    this.server = net.createServer((client) => this._accept(client));
  }

  async listen() {
    await new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", resolve);
    });
    this.port = this.server.address().port;
    return this.port;
  }

  _accept(client) {
    if (this.refusing) {
      client.on("error", () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.targetPort, "127.0.0.1");
    const pair = { client, upstream };
    this.pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      this.pairs.delete(pair);
      this.frozen.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // An upstream that refuses (server down) fails the browser's attempt.
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
  }

  /** Resets every current connection: an unclean drop for both ends. */
  cut() {
    for (const { client, upstream } of [...this.pairs]) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    this.pairs.clear();
  }

  /**
   * Stops forwarding on every current connection without closing it;
   * returns how many were frozen. Later connections are not affected.
   */
  freeze() {
    const count = this.pairs.size;
    for (const pair of [...this.pairs]) {
      pair.client.unpipe(pair.upstream);
      pair.upstream.unpipe(pair.client);
      pair.client.pause();
      pair.upstream.pause();
      this.pairs.delete(pair);
      this.frozen.add(pair);
    }
    return count;
  }

  async close() {
    this.cut();
    for (const { client, upstream } of [...this.frozen]) {
      client.destroy();
      upstream.destroy();
    }
    this.frozen.clear();
    await new Promise((r) => this.server.close(r));
  }
}

/**
 * Chromium's flags on this machine: headless without a sandbox or GPU, and
 * none of the background traffic that a closed network refuses. Playwright
 * gives every launch a fresh, empty profile directory of its own.
 */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Launches Chromium with CHROMIUM_ARGS; every wait bounded. Playwright kills
 * the browser it launched when this process exits.
 */
export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM_BIN, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** The artifacts directory, created if needed; returns `name` inside it. */
export function artifact(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

/**
 * Bounds a whole test file: whatever hangs, the run ends after `ms`, and
 * `cleanup` (which should kill the server children, which would outlive
 * this process) runs first. Returns a function that disarms it.
 */
export function watchdog(name, ms, cleanup) {
  const timer = setTimeout(() => {
    console.error(`${name}: still running after ${ms} ms; cleaning up and giving up`);
    try {
      cleanup();
    } finally {
      process.exit(1);
    }
  }, ms);
  timer.unref();
  return () => clearTimeout(timer);
}

/**
 * What a page's debug hooks say, for failure messages: whichever of
 * window.__arena, window.__four and window.__lobby the page has.
 */
async function describePage(page) {
  try {
    return JSON.stringify(
      await page.evaluate(() => {
        const out = { url: location.href, badge: document.getElementById("badge")?.textContent };
        if (window.__arena) {
          const a = window.__arena;
          Object.assign(out, { state: a.state, playerId: a.playerId, attempt: a.attempt, log: a.log.slice(-8) });
        }
        if (window.__four) {
          const f = window.__four;
          Object.assign(out, {
            connection: f.connection,
            seat: f.seat,
            turn: f.turn,
            status: f.status,
            moves: f.moves,
            events: f.events.slice(-8),
            log: f.log.slice(-6),
            notice: f.notice,
          });
        }
        if (window.__lobby) Object.assign(out, { rooms: window.__lobby.rooms, error: window.__lobby.error });
        return out;
      }),
    );
  } catch {
    // The page itself is gone; the original error says enough.
    return "unavailable";
  }
}

/**
 * Waits until `fn` (run in the page) returns something truthy; on timeout,
 * fails with `what` and the page's debug hooks, so the failure explains
 * itself.
 */
export async function waitInPage(page, what, fn, arg, timeoutMs = 10000) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 50 });
    return await handle.jsonValue();
  } catch (e) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; page: ${await describePage(page)}\n${e.message}`);
  }
}

/**
 * The four-in-a-row page's state as plain data (its test hook,
 * window.__four), for the tests that play it.
 */
export function fourPage(page) {
  return page.evaluate(() => {
    const f = window.__four;
    return {
      connection: f.connection,
      seat: f.seat,
      turn: f.turn,
      status: f.status,
      board: f.board,
      moves: f.moves,
      allMoves: f.allMoves,
      events: f.events,
      game: f.state ? f.state.game : null,
      stateMoves: f.state ? f.state.moves : null,
      seats: f.state ? f.state.seats : null,
      welcomes: f.welcomes,
      resumed: f.resumed,
      playerId: f.playerId,
      roomId: f.roomId,
      inviteCode: f.inviteCode,
      lastEvent: f.lastEvent,
      states: f.log.map((s) => s.state),
    };
  });
}
