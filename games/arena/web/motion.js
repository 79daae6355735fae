// motion.js: the arena's motion on the client, in both directions.
//
//   StateBuffer  smooth drawing between states: places each state on the
//                server's tick timeline and answers "where was everything a
//                little while ago", interpolating between the two states
//                around that moment;
//   MovePacer    the player's wish to move, sent as Move messages over a
//                Session: when it changes (paced under the server's rate
//                limit), repeated while moving, and again after a reconnect.
//
// Not for the wire format (codec.js), the session (../session.js) or the
// DOM (game.js): no element, no key, no canvas here, and time comes in as
// arguments or injected timers, which is how server/web/test/ drives both
// classes without a browser.

import { encodeMove, entityKey } from "./codec.js";

/**
 * Recent states on the server's tick timeline, for drawing smooth motion
 * at any frame rate from states that arrive at the tick rate, late, or
 * not at all (the server skips states for a slow reader).
 *
 * Each state's arrival time minus its tick's nominal time is a sample of
 * the clock offset plus that state's delay; the smallest recent sample is
 * the least-delayed path, so "now" on the tick timeline is estimated from
 * it. Drawing happens `delayTicks` behind that, so that the state after
 * the drawn moment has usually arrived and there is something to
 * interpolate towards. Nothing is extrapolated: when the next state is
 * late, everything holds still at the newest one.
 */
export class StateBuffer {
  /**
   * tickHz: the room's tick rate (Welcome.tickHz). delayTicks: how far
   * behind the estimated present to draw; 2 ticks (67 ms at 30 Hz) covers
   * ordinary jitter. maxJump: a move longer than this between two states
   * is a teleport (a respawned pickup), drawn as a jump, not a glide.
   */
  constructor({ tickHz = 30, delayTicks = 2, maxJump = 150 } = {}) {
    this.delayTicks = delayTicks;
    this.maxJump = maxJump;
    this.reset(tickHz);
  }

  /** Forgets everything; call on every Welcome (a rejoin may change room). */
  reset(tickHz) {
    this.periodMs = 1000 / tickHz;
    this.entries = [];
    this.offsets = [];
    this.gaps = [];
  }

  /**
   * Ticks between two states lately: the server's send interval
   * (--snapshot-hz, and lowered by the server itself under overload), the
   * median of the recent gaps so that a state skipped now and then does
   * not count. 1 until three gaps have been seen: one or two could be a
   * skip (a slow reader's) rather than the rate.
   */
  sendGap() {
    if (this.gaps.length < 3) return 1;
    const sorted = [...this.gaps].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }

  /**
   * Adds a state ({ tick, entities, ... }: the envelope's tick with the
   * decoded ArenaState) that arrived at `arrivalMs` (a monotonic clock).
   */
  push(state, arrivalMs) {
    const last = this.entries[this.entries.length - 1];
    // Ticks only grow within a room; an older one is a duplicate or stale.
    if (last && state.tick <= last.tick) return;
    const map = new Map();
    for (const e of state.entities) map.set(entityKey(e), e);
    if (last) {
      this.gaps.push(state.tick - last.tick);
      // Sixteen gaps: half a second at 30 states a second, so a change of
      // the send rate is followed within a second either way.
      if (this.gaps.length > 16) this.gaps.shift();
    }
    this.entries.push({ tick: state.tick, state, map });
    this.offsets.push(arrivalMs - state.tick * this.periodMs);
    // Three seconds of offsets: long enough to find a quick path, short
    // enough to follow a clock that drifts.
    const keep = Math.ceil(3000 / this.periodMs);
    if (this.offsets.length > keep) this.offsets.splice(0, this.offsets.length - keep);
    if (this.entries.length > keep) this.entries.splice(0, this.entries.length - keep);
  }

  /**
   * The (fractional) tick to draw at `nowMs`, or null before any state.
   * It runs delayTicks behind the estimated present, plus the ticks a
   * state interval adds beyond one: with a state every third tick the next
   * state is up to three ticks away, and drawing must stay behind it to
   * have something to interpolate towards.
   */
  renderTick(nowMs) {
    if (this.entries.length === 0) return null;
    const offset = Math.min(...this.offsets);
    return (nowMs - offset) / this.periodMs - this.delayTicks - (this.sendGap() - 1);
  }

  /**
   * Everything as it was at the render tick for `nowMs`: { tick, latest,
   * entities }, where entities carry their state fields plus `key`; null
   * before the first state.
   */
  sample(nowMs) {
    const entries = this.entries;
    if (entries.length === 0) return null;
    const rt = this.renderTick(nowMs);
    const latest = entries[entries.length - 1];
    let a = entries[0];
    let b = null;
    for (let i = entries.length - 1; i >= 0; i--) {
      if (entries[i].tick <= rt) {
        a = entries[i];
        b = entries[i + 1] || null;
        break;
      }
    }
    if (rt < entries[0].tick) b = null;
    // Entries before `a` are never needed again.
    const drop = entries.indexOf(a);
    if (drop > 0) entries.splice(0, drop);
    if (!b) {
      const entities = a.state.entities.map((e) => ({ ...e, key: entityKey(e) }));
      return { tick: Math.min(Math.max(rt, entries[0].tick), latest.tick), latest: latest.state, entities };
    }
    const alpha = (rt - a.tick) / (b.tick - a.tick);
    const entities = b.state.entities.map((e) => {
      const key = entityKey(e);
      const from = a.map.get(key);
      if (!from || Math.hypot(e.x - from.x, e.y - from.y) > this.maxJump) return { ...e, key };
      return { ...e, key, x: from.x + (e.x - from.x) * alpha, y: from.y + (e.y - from.y) * alpha };
    });
    return { tick: rt, latest: latest.state, entities };
  }
}

/** Defaults of MovePacer's options, each with its reason. */
export const PACER_DEFAULTS = Object.freeze({
  /**
   * While moving, resend the current move every 250 ms: the player keeps
   * its velocity anyway, but the acks keep flowing and a dropped message
   * is repaired.
   */
  repeatMs: 250,
  /**
   * At most one move per 34 ms (about 30/s) however fast the direction
   * changes, half the server's limit of 60 game messages a second.
   */
  minIntervalMs: 34,
});

const IDLE = Object.freeze({ dx: 0, dy: 0 });

function clampAxis(v) {
  const n = Math.round(Number(v));
  if (!Number.isFinite(n)) return 0;
  // -128 is read as -127 by the server; send the documented range only.
  return Math.max(-127, Math.min(127, n));
}

/**
 * Sends the direction the player wants over `session` (a Session of
 * ../session.js). set(dx, dy) records the wish; it goes out when it
 * changes (at most one Move per minIntervalMs, the latest wish winning),
 * is repeated every repeatMs while non-zero, and is sent again after every
 * Welcome, since the server resumes a player standing still. Nothing is
 * sent while the session cannot send; the wish waits for it.
 *
 * Options: repeatMs, minIntervalMs (PACER_DEFAULTS), and setTimeout,
 * clearTimeout, now (default: the globals and performance.now), which the
 * tests replace.
 */
export class MovePacer {
  constructor(session, options = {}) {
    this.session = session;
    this.options = Object.freeze({
      repeatMs: options.repeatMs ?? PACER_DEFAULTS.repeatMs,
      minIntervalMs: options.minIntervalMs ?? PACER_DEFAULTS.minIntervalMs,
    });
    this._setTimeout = options.setTimeout || ((fn, ms) => globalThis.setTimeout(fn, ms));
    this._clearTimeout = options.clearTimeout || ((id) => globalThis.clearTimeout(id));
    this._now = options.now || (() => globalThis.performance.now());
    this._desired = IDLE;
    /** What the server last got from this session, and when. */
    this._sent = IDLE;
    this._lastAt = null;
    this._timer = null;
    this._off = [
      session.on("welcome", () => {
        // A new session: the server has the player standing still.
        this._sent = IDLE;
        this._lastAt = null;
        this._pump();
      }),
      // The first state of a resumed session makes it able to send.
      session.on("state", () => this._pump()),
    ];
  }

  /** The direction wanted now, as clamped: { dx, dy }. */
  get desired() {
    return this._desired;
  }

  /** The player wants to move by (dx, dy), each -127..127 (rounded and clamped). */
  set(dx, dy) {
    this._desired = { dx: clampAxis(dx), dy: clampAxis(dy) };
    this._pump();
  }

  /** Stops listening and cancels the pending send. */
  dispose() {
    this._clear();
    for (const off of this._off) off();
    this._off = [];
  }

  _clear() {
    if (this._timer !== null) {
      this._clearTimeout(this._timer);
      this._timer = null;
    }
  }

  /** Sends the wish when it is due. */
  _pump() {
    this._clear();
    if (!this.session.canSend) return;
    const d = this._desired;
    const changed = d.dx !== this._sent.dx || d.dy !== this._sent.dy;
    const moving = d.dx !== 0 || d.dy !== 0;
    if (!changed && !moving) return;
    const gap = changed ? this.options.minIntervalMs : this.options.repeatMs;
    const wait = this._lastAt === null ? 0 : this._lastAt + gap - this._now();
    if (wait > 0) {
      this._timer = this._setTimeout(() => {
        this._timer = null;
        this._pump();
      }, wait);
      return;
    }
    if (this.session.send(encodeMove(d)) === null) return;
    this._sent = d;
    this._lastAt = this._now();
    this._pump();
  }
}
