// game.js: the arena's page, served at /arena/ (index.html). It wires a
// Session (/session.js) to the screen: the connection badge and buttons,
// keyboard and touch input (sent through motion.js's MovePacer), the
// canvas drawing of the arena (interpolated between states with
// motion.js's StateBuffer), and the HUD. It connects as soon as the page
// loads.
//
// Not for protocol, reconnect or heartbeat logic (all of that is in
// session.js, which knows no game) nor for the arena's bytes (codec.js).
//
// Query-string options (all optional):
//   room=ID       join the public arena room with that id
//   code=CODE     join a room by its invite code
//   create=private|public   open a new room (private: reached by code only)
//   pace=fast|normal        the room option quick join matches on (and a
//                 created room gets); default: the server's, normal
//   (none)        quick join an arena room
//   watch=ID      watch instead of play (with ws= naming /watch/ROOM/ws
//                 or /replay/ID/ws): no buttons, no input sent
//   plus the session options every game page takes (session.js,
//   sessionOptionsFromQuery): ws, backoffBase, backoffMax, pingInterval,
//   pongTimeout, connectTimeout, e.g. /arena/?backoffBase=200&backoffMax=2000
//   retries quickly (the end-to-end test uses that), and
//   ?ws=ws://127.0.0.1:9000/ws connects through a proxy.
//
// Debug hook, read-only, for tests and the curious: window.__arena has
// getters for
//   state        the connection state (see session.js: idle, connecting,
//                connected, reconnecting, offline, stopped)
//   playerId, roomId, roomType, inviteCode, resumed   from the latest
//                Welcome (null before one)
//   welcomes     how many Welcomes this page has received
//   lastState    the latest state as decoded: { tick, ack, players, entities }
//   self         this player's entity in lastState, or null
//   attempt      the reconnect attempt number (0 while connected)
//   nextRetryMs  the delay chosen before the current attempt (null while
//                trying or connected); retryCapMs its back-off ceiling
//   rtt          the last round-trip time in ms, or null
//   reason, code why the session stopped, and the close code
//   notice       the last notice shown to the player
//   inputSeq     the seq of the last Move sent
//   log          the recent status changes, oldest first (copies)

import { Session, bindBadge, roomRequestFromQuery, sessionOptionsFromQuery } from "../session.js";
import { OPTION_KEYS, ROOM_TYPE, decodeState, decodeWelcome, entityKey } from "./codec.js";
import { MovePacer, StateBuffer } from "./motion.js";

const params = new URLSearchParams(location.search);
const { request, storageKey } = roomRequestFromQuery(params, ROOM_TYPE, OPTION_KEYS);

const session = new Session({ ...sessionOptionsFromQuery(params), room: request, storageKey });
const pacer = new MovePacer(session);

const $ = (id) => document.getElementById(id);
const badge = $("badge");
const notice = $("notice");
const buttons = { join: $("join"), retry: $("retry"), leave: $("leave") };
const canvas = $("arena");
const ctx = canvas.getContext("2d");
const hud = {
  rtt: $("hud-rtt"),
  tick: $("hud-tick"),
  players: $("hud-players"),
  score: $("hud-score"),
  player: $("hud-player"),
  room: $("hud-room"),
};
const scores = $("scores");

const buffer = new StateBuffer();
let world = { width: 2000, height: 2000, viewRadius: 300 };
let welcomes = 0;
let lastNotice = "";
/** The latest state: the envelope's tick and ack with the decoded ArenaState. */
let lastState = null;

// ---- badge, buttons, notices ----

// A spectator's or a replay viewer's page (?watch=) plays nothing: its
// buttons and inputs would do nothing, so they are not shown.
const watching = params.has("watch");
if (watching) for (const b of Object.values(buttons)) b.hidden = true;

function showButtons(s) {
  buttons.join.disabled = !(s.state === "idle" || s.state === "stopped");
  buttons.retry.disabled = !((s.state === "reconnecting" && s.retryInMs !== null) || s.state === "offline");
  // Leaving needs a connection to carry it.
  buttons.leave.disabled = s.state !== "connected";
}

function showNotice(text) {
  lastNotice = text;
  notice.textContent = text;
}

bindBadge(session, badge);
session.on("status", showButtons);
session.on("notice", showNotice);
session.on("welcome", (w) => {
  welcomes += 1;
  try {
    const g = decodeWelcome(w.game);
    world = { width: g.worldWidth, height: g.worldHeight, viewRadius: g.viewRadius };
  } catch (e) {
    showNotice(`This room's welcome is not an arena's (${w.roomType}): ${e.message}`);
  }
  buffer.reset(w.tickHz);
  lastState = null;
  if (w.resumed) showNotice(`Reconnected: player #${w.playerId} is yours again.`);
});
session.on("state", (s) => {
  let decoded;
  try {
    decoded = decodeState(s.data);
  } catch (e) {
    // A broken state is skipped; the next one replaces it anyway.
    console.error(`undecodable arena state at tick ${s.tick}: ${e.message}`);
    return;
  }
  lastState = { tick: s.tick, ack: s.ack, ...decoded };
  buffer.push(lastState, performance.now());
});

buttons.join.addEventListener("click", () => {
  showNotice("");
  session.connect();
});
buttons.retry.addEventListener("click", () => session.retryNow());
buttons.leave.addEventListener("click", () => {
  session.leave();
  showNotice("You left. Join to play again as a new player.");
});

// ---- input: keyboard and a drag joystick ----

/** Physical keys (KeyboardEvent.code), so WASD works on any layout. */
const KEYS = {
  ArrowLeft: [-1, 0],
  KeyA: [-1, 0],
  ArrowRight: [1, 0],
  KeyD: [1, 0],
  ArrowUp: [0, -1],
  KeyW: [0, -1],
  ArrowDown: [0, 1],
  KeyS: [0, 1],
};
const held = new Set();

/** CSS pixels of drag for a full deflection of the joystick. */
const STICK_RADIUS = 60;
let stick = null;

function sendInput() {
  if (watching) return;
  if (stick) {
    const vx = stick.x - stick.x0;
    const vy = stick.y - stick.y0;
    const len = Math.hypot(vx, vy);
    // A few pixels of slack, so a tap is not a move.
    if (len < 6) return pacer.set(0, 0);
    const k = Math.min(len, STICK_RADIUS) / STICK_RADIUS / len;
    return pacer.set(vx * k * 127, vy * k * 127);
  }
  let dx = 0;
  let dy = 0;
  for (const code of held) {
    dx += KEYS[code][0];
    dy += KEYS[code][1];
  }
  pacer.set(Math.sign(dx) * 127, Math.sign(dy) * 127);
}

/**
 * Lets go of every key and the joystick. Called when the page loses focus
 * or is hidden: the key-up would go elsewhere, and the player would run on
 * forever.
 */
function releaseAll() {
  if (held.size === 0 && !stick) return;
  held.clear();
  stick = null;
  sendInput();
}

addEventListener("keydown", (e) => {
  if (!(e.code in KEYS) || e.altKey || e.ctrlKey || e.metaKey) return;
  // Arrow keys would scroll the page; the game has them.
  e.preventDefault();
  // Recorded even while disconnected: the pacer sends the held direction
  // once a session is back.
  held.add(e.code);
  sendInput();
});
addEventListener("keyup", (e) => {
  if (held.delete(e.code)) sendInput();
});
addEventListener("blur", releaseAll);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") releaseAll();
});

canvas.addEventListener("pointerdown", (e) => {
  canvas.setPointerCapture(e.pointerId);
  stick = { id: e.pointerId, x0: e.offsetX, y0: e.offsetY, x: e.offsetX, y: e.offsetY };
  sendInput();
});
canvas.addEventListener("pointermove", (e) => {
  if (!stick || e.pointerId !== stick.id) return;
  stick.x = e.offsetX;
  stick.y = e.offsetY;
  sendInput();
});
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, (e) => {
    if (!stick || e.pointerId !== stick.id) return;
    stick = null;
    sendInput();
  });
}

// ---- drawing ----

function playerColour(id) {
  // Golden-angle hues: neighbouring ids get clearly different colours.
  return `hsl(${(id * 137.508) % 360}, 65%, 58%)`;
}

function resize() {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  return { w: canvas.clientWidth, h: canvas.clientHeight, dpr };
}

function draw(now) {
  const { w, h, dpr } = resize();
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#07090d";
  ctx.fillRect(0, 0, w, h);

  const view = buffer.sample(now);
  const myKey = session.playerId === null ? null : `p${session.playerId}`;
  const me = view && view.entities.find((e) => e.key === myKey);
  const cx = me ? me.x : world.width / 2;
  const cy = me ? me.y : world.height / 2;
  // The view radius fills the shorter side, with a margin.
  const scale = Math.min(w, h) / (2 * world.viewRadius * 1.15);
  const sx = (x) => w / 2 + (x - cx) * scale;
  const sy = (y) => h / 2 + (y - cy) * scale;

  // The field and its grid.
  ctx.fillStyle = "#121824";
  ctx.fillRect(sx(0), sy(0), world.width * scale, world.height * scale);
  ctx.strokeStyle = "#1d2636";
  ctx.lineWidth = 1;
  ctx.beginPath();
  const step = 100;
  const x0 = Math.max(0, Math.floor((cx - w / 2 / scale) / step) * step);
  const x1 = Math.min(world.width, cx + w / 2 / scale);
  for (let x = x0; x <= x1; x += step) {
    ctx.moveTo(sx(x), sy(0));
    ctx.lineTo(sx(x), sy(world.height));
  }
  const y0 = Math.max(0, Math.floor((cy - h / 2 / scale) / step) * step);
  const y1 = Math.min(world.height, cy + h / 2 / scale);
  for (let y = y0; y <= y1; y += step) {
    ctx.moveTo(sx(0), sy(y));
    ctx.lineTo(sx(world.width), sy(y));
  }
  ctx.stroke();
  ctx.strokeStyle = "#3b4a63";
  ctx.lineWidth = 2;
  ctx.strokeRect(sx(0), sy(0), world.width * scale, world.height * scale);

  if (me) {
    // What the server shows this player: everything within the view radius.
    ctx.setLineDash([6, 6]);
    ctx.strokeStyle = "#2a3650";
    ctx.beginPath();
    ctx.arc(sx(me.x), sy(me.y), world.viewRadius * scale, 0, Math.PI * 2);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  if (view) {
    const pickupR = Math.max(3, 7 * scale);
    for (const e of view.entities) {
      if (e.kind !== "Pickup") continue;
      ctx.fillStyle = "#f2c230";
      ctx.shadowColor = "#f2c230";
      ctx.shadowBlur = 8;
      ctx.beginPath();
      ctx.arc(sx(e.x), sy(e.y), pickupR, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.shadowBlur = 0;
    const playerR = Math.max(6, 14 * scale);
    ctx.textAlign = "center";
    ctx.font = "600 12px system-ui, sans-serif";
    // Others first, so that this player is always drawn on top.
    const players = view.entities.filter((e) => e.kind !== "Pickup").sort((a, b) => (a.key === myKey) - (b.key === myKey));
    for (const e of players) {
      const x = sx(e.x);
      const y = sy(e.y);
      const dropped = e.kind === "DroppedPlayer";
      ctx.globalAlpha = dropped ? 0.4 : 1;
      ctx.fillStyle = dropped ? "#8a93a3" : playerColour(e.id);
      ctx.beginPath();
      ctx.arc(x, y, playerR, 0, Math.PI * 2);
      ctx.fill();
      if (e.key === myKey) {
        ctx.lineWidth = 3;
        ctx.strokeStyle = "#ffffff";
        ctx.stroke();
      }
      ctx.globalAlpha = 1;
      ctx.fillStyle = "#e6e9ef";
      const label = e.key === myKey ? `you · ${e.score}` : `#${e.id}${dropped ? " away" : ""} · ${e.score}`;
      ctx.fillText(label, x, y - playerR - 6);
    }
  }

  if (stick) {
    ctx.strokeStyle = "rgba(255,255,255,.35)";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(stick.x0, stick.y0, STICK_RADIUS, 0, Math.PI * 2);
    ctx.stroke();
    const vx = stick.x - stick.x0;
    const vy = stick.y - stick.y0;
    const k = Math.min(1, STICK_RADIUS / Math.max(1, Math.hypot(vx, vy)));
    ctx.fillStyle = "rgba(255,255,255,.5)";
    ctx.beginPath();
    ctx.arc(stick.x0 + vx * k, stick.y0 + vy * k, 14, 0, Math.PI * 2);
    ctx.fill();
  }

  if (session.state !== "connected") {
    ctx.fillStyle = "rgba(7,9,13,.6)";
    ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = "#e6e9ef";
    ctx.textAlign = "center";
    ctx.font = "600 16px system-ui, sans-serif";
    ctx.fillText(badge.textContent, w / 2, h / 2);
  }
}

// ---- HUD ----

/** The HUD is text for people, not animation: a few updates a second. */
const HUD_INTERVAL_MS = 200;
let lastHud = -Infinity;

function updateHud(now) {
  if (now - lastHud < HUD_INTERVAL_MS) return;
  lastHud = now;
  const st = lastState;
  const self = selfEntity();
  hud.rtt.textContent = session.rtt === null ? "–" : `${Math.round(session.rtt)} ms`;
  hud.tick.textContent = st ? String(st.tick) : "–";
  hud.players.textContent = st ? String(st.players) : "–";
  hud.score.textContent = self ? String(self.score) : "–";
  hud.player.textContent = session.playerId === null ? "–" : `#${session.playerId}`;
  hud.room.textContent = session.roomId === null ? "–" : `#${session.roomId}`;
  const rows = st
    ? st.entities
        .filter((e) => e.kind !== "Pickup")
        .sort((a, b) => b.score - a.score || a.id - b.id)
        .slice(0, 8)
    : [];
  const text = rows.map((e) => `${e.id}:${e.score}:${e.kind}`).join(",");
  if (scores.dataset.rows === text) return;
  scores.dataset.rows = text;
  scores.replaceChildren(
    ...rows.map((e) => {
      const li = document.createElement("li");
      const mine = e.id === session.playerId;
      li.textContent = `#${e.id}${mine ? " (you)" : ""}${e.kind === "DroppedPlayer" ? " (away)" : ""}: ${e.score}`;
      if (mine) li.className = "you";
      return li;
    }),
  );
}

function selfEntity() {
  if (!lastState || session.playerId === null) return null;
  const key = `p${session.playerId}`;
  return lastState.entities.find((e) => entityKey(e) === key) || null;
}

function frame(now) {
  draw(now);
  updateHud(now);
  requestAnimationFrame(frame);
}

// ---- debug hook ----

Object.defineProperty(window, "__arena", {
  value: Object.freeze({
    get state() {
      return session.state;
    },
    get playerId() {
      return session.playerId;
    },
    get roomId() {
      return session.roomId;
    },
    get roomType() {
      return session.welcome ? session.welcome.roomType : null;
    },
    get inviteCode() {
      return session.inviteCode;
    },
    get resumed() {
      return session.welcome ? session.welcome.resumed : null;
    },
    get welcomes() {
      return welcomes;
    },
    get lastState() {
      return lastState;
    },
    get self() {
      return selfEntity();
    },
    get attempt() {
      return session.status.attempt;
    },
    get nextRetryMs() {
      return session.status.retryInMs;
    },
    get retryCapMs() {
      return session.status.retryCapMs;
    },
    get rtt() {
      return session.rtt;
    },
    get reason() {
      return session.status.reason;
    },
    get code() {
      return session.status.code;
    },
    get notice() {
      return lastNotice;
    },
    get inputSeq() {
      return session.gameSeq;
    },
    get log() {
      return session.log.map((s) => ({ ...s }));
    },
  }),
  enumerable: false,
  writable: false,
  configurable: false,
});

showButtons(session.status);
requestAnimationFrame(frame);
session.connect();
