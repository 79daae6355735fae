// game.js: place's page, served at /place/ (index.html). It wires a Session
// (/session.js) to the canvas: it joins on load, draws every state, applies
// every Painted event at once (the next state agrees), sends a Paint when
// you click a pixel and the server has said you may, and shows your
// cooldown, the room's counts, an invite code and the connection badge.
//
// Query string: size=16|32|64 (the canvas of a new room, and the rooms
// quick join looks for), create=private|public, code=CODE, room=ID, plus
// the session options of sessionOptionsFromQuery (ws, backoffBase, ...).
//
// Debug hook for tests, read-only: window.__place (see the end).

import { Session, bindBadge, roomRequestFromQuery, sessionOptionsFromQuery } from "../session.js";
import { PALETTE, ROOM_TYPE, decodeEvent, decodeState, decodeWelcome, encodeMsg } from "./codec.js";

const params = new URLSearchParams(location.search);
const { request, storageKey } = roomRequestFromQuery(params, ROOM_TYPE, ["size"]);
const session = new Session({ ...sessionOptionsFromQuery(params), room: request, storageKey });

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx2d = canvas.getContext("2d");

/** The canvas size, from the Welcome; 0 before it. */
let size = 0;
/** The pixels as the page knows them: the last state plus later events. */
let pixels = new Uint8Array(0);
/** The latest state, and when (performance.now) and at which tick it came. */
let state = null;
let stateAt = 0;
let stateTick = 0;
/** A Paint is on its way and no state has shown it applied yet. */
let pending = false;
let color = 1;
let events = 0;
let notice = "";

function showNotice(text) {
  notice = text;
  $("notice").textContent = text;
}

/** True when the server's latest word is that we may paint now. */
function ready() {
  return state !== null && state.readyAt === null && !pending && session.canSend;
}

// ---- drawing ----

function drawPixel(x, y) {
  const scale = canvas.width / size;
  ctx2d.fillStyle = PALETTE[pixels[y * size + x]] ?? "#000";
  ctx2d.fillRect(x * scale, y * scale, scale, scale);
}

function drawAll() {
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) drawPixel(x, y);
}

function renderStatus() {
  canvas.dataset.ready = String(ready());
  let text;
  if (!state) text = "Connecting…";
  else if (ready()) text = "Ready: pick a colour and click a pixel.";
  else if (pending) text = "Painting…";
  else {
    const hz = session.welcome ? session.welcome.tickHz : 10;
    const left = (state.readyAt - stateTick) / hz - (performance.now() - stateAt) / 1000;
    text = `Next pixel in ${Math.max(0, left).toFixed(1)} s`;
  }
  if ($("cooldown").textContent !== text) $("cooldown").textContent = text;
  $("counts").textContent = state ? `${state.painted} pixels painted here, ${state.pixels} by you.` : "";
  const code = session.inviteCode;
  $("invite").hidden = !code;
  if (code) {
    $("invite-code").textContent = code;
    $("invite-link").value = `${location.origin}/place/?code=${code}`;
  }
}

const swatches = PALETTE.map((rgb, i) => {
  const button = document.createElement("button");
  button.type = "button";
  button.id = `color-${i}`;
  button.style.background = rgb;
  button.setAttribute("role", "radio");
  button.setAttribute("aria-label", `Colour ${i}`);
  button.addEventListener("click", () => pick(i));
  $("palette").append(button);
  return button;
});

function pick(i) {
  color = i;
  swatches.forEach((b, j) => b.setAttribute("aria-checked", String(j === i)));
}
pick(color);

// ---- input ----

canvas.addEventListener("click", (e) => {
  if (!ready()) return;
  const rect = canvas.getBoundingClientRect();
  const x = Math.floor(((e.clientX - rect.left) / rect.width) * size);
  const y = Math.floor(((e.clientY - rect.top) / rect.height) * size);
  if (x < 0 || y < 0 || x >= size || y >= size) return;
  if (session.send(encodeMsg({ type: "Paint", x, y, color })) !== null) pending = true;
  renderStatus();
});

// ---- the session ----

bindBadge(session, $("badge"));
session.on("status", renderStatus);
session.on("notice", showNotice);

session.on("welcome", (w) => {
  const welcome = decodeWelcome(w.game);
  if (welcome.size !== size) {
    size = welcome.size;
    pixels = new Uint8Array(size * size);
    drawAll();
  }
  if (!w.resumed) state = null;
  pending = false;
  renderStatus();
});

session.on("state", (s) => {
  state = decodeState(s.data);
  [stateAt, stateTick] = [performance.now(), s.tick];
  if (state.readyAt !== null) pending = false;
  pixels = state.canvas.slice();
  drawAll();
  renderStatus();
});

session.on("event", (e) => {
  const ev = decodeEvent(e.data);
  events += 1;
  if (ev.type === "Rejected") {
    pending = false;
    showNotice(`Not painted: ${ev.reason}.`);
  } else if (ev.x < size && ev.y < size) {
    pixels[ev.y * size + ev.x] = ev.color;
    drawPixel(ev.x, ev.y);
  }
  renderStatus();
});

setInterval(renderStatus, 100);
session.connect();

window.__place = {
  get connection() { return session.state; },
  get size() { return size; },
  get canvas() { return Array.from(pixels); },
  get state() { return state && { ...state, canvas: Array.from(state.canvas) }; },
  get ready() { return ready(); },
  get events() { return events; },
  get playerId() { return session.playerId; },
  get roomId() { return session.roomId; },
  get inviteCode() { return session.inviteCode; },
  get notice() { return notice; },
};
