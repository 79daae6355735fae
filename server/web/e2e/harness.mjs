// Helpers for the end-to-end test (arena.test.mjs): the real server binary
// as a child process on a free loopback port, a TCP proxy that the test can
// cut or freeze to break the browser's connection while the server keeps
// running, Chromium launched the way this machine needs, and bounded waits.
//
// Not a test itself (no *.test.mjs name), and not for unit tests, which
// need none of this.

import { spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import http from "node:http";
import net from "node:net";

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
  constructor({ bin, port, args = [], logPath }) {
    if (!existsSync(bin)) {
      throw new Error(`server binary ${bin} not found: build it (cargo build --release -p server) or set ARENA_SERVER_BIN`);
    }
    this.bin = bin;
    this.port = port;
    this.args = args;
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
 * A TCP proxy from a local port to the server. `cut()` resets every
 * connection through it (the browser sees a close without a close frame,
 * 1006, and the server sees the socket die); `freeze()` stops forwarding on
 * every current connection while keeping the sockets open, so that only a
 * heartbeat can tell the connection is dead. New connections always flow.
 */
export class TcpProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    /** Connections that forward. */
    this.pairs = new Set();
    /** Connections that `freeze()` stopped; they stay open until close(). */
    this.frozen = new Set();
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
 * Waits until `fn` (run in the page) returns something truthy; on timeout,
 * fails with `what` and the page's debug hook, so the failure explains
 * itself.
 */
export async function waitInPage(page, what, fn, arg, timeoutMs = 10000) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 50 });
    return await handle.jsonValue();
  } catch (e) {
    let state = "unavailable";
    try {
      state = JSON.stringify(
        await page.evaluate(() => ({
          state: window.__arena.state,
          playerId: window.__arena.playerId,
          attempt: window.__arena.attempt,
          badge: document.getElementById("badge").textContent,
          log: window.__arena.log.slice(-8),
        })),
      );
    } catch {
      // The page itself is gone; the original error says enough.
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; page: ${state}\n${e.message}`);
  }
}
