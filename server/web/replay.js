// replay.js: the recording viewer at /replay/ID (replay.html). It reads
// the recording's facts (GET /replay/ID/info), shows the game's own page
// in a frame whose session connects to /replay/ID/ws instead of a room,
// and steers that playback through the server: POST
// /replay/stream/S?pause=&speed=&seek= changes it, GET /replay/stream/S
// (polled) says where it is. The stream S is this page's own (random), so
// the frame can reconnect (to follow another player) and go on where it
// was. Not for drawing the game: the game's page does that.
//
// Debug hook, read-only, for tests: window.__replay has getters for
//   info      the recording's facts (null until loaded)
//   stream    this page's stream id
//   control   the last state read: { tick, end_tick, paused, speed }
//   follow    the player followed
//   frameUrl  the game page's URL in the frame
//   error     the last error shown, or ""

const $ = (id) => document.getElementById(id);
const el = {
  title: $("title"),
  error: $("error"),
  play: $("play"),
  speed: $("speed"),
  seek: $("seek"),
  clock: $("clock"),
  follow: $("follow"),
  frame: $("game"),
  end: $("end"),
};

const id = decodeURIComponent(location.pathname.split("/")[2] || "");
const stream = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
let info = null;
let control = null;
let follow = null;
let frameUrl = "";
let error = "";
// While the user drags the seek bar, polling does not move it.
let seeking = false;

function showError(text) {
  error = text;
  el.error.textContent = text;
}

function clockText(ticks) {
  const seconds = Math.max(0, Math.round(ticks / info.tick_hz));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

/** The game page for following `player`, from the stream's current place. */
function gameUrl(player) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams({ stream, follow: String(player) });
  if (control) {
    query.set("from", String(control.tick));
    query.set("speed", String(control.speed));
    if (control.paused) query.set("paused", "1");
  }
  const ws = `${scheme}//${location.host}/replay/${encodeURIComponent(id)}/ws?${query}`;
  // `watch` keeps the frame's session apart from the player's own.
  return `${info.page}?watch=${stream}&ws=${encodeURIComponent(ws)}`;
}

function showGame(player) {
  follow = player;
  el.follow.value = String(player);
  frameUrl = gameUrl(player);
  el.frame.src = frameUrl;
}

async function steer(params) {
  const response = await fetch(`/replay/stream/${stream}?${new URLSearchParams(params)}`, { method: "POST" });
  if (response.ok) {
    control = await response.json();
    render();
  } else if (response.status !== 404) {
    showError(`The replay could not be steered: ${await response.text()}`);
  }
}

function render() {
  if (!control) return;
  el.play.textContent = control.paused ? "Play" : "Pause";
  el.speed.value = String(control.speed);
  if (!seeking) el.seek.value = String(control.tick);
  el.clock.textContent = `${clockText(control.tick - info.start_tick)} / ${clockText(info.end_tick - info.start_tick)}`;
  const atEnd = control.paused && control.tick >= control.end_tick;
  el.end.textContent = atEnd ? `The recording ends here (${info.end || "it was still running"}).` : "";
}

async function poll() {
  try {
    const response = await fetch(`/replay/stream/${stream}`);
    if (response.ok) {
      control = await response.json();
      render();
    }
  } catch {
    // The server is away for a moment: the next poll tries again.
  }
}

async function start() {
  const response = await fetch(`/replay/${encodeURIComponent(id)}/info`);
  if (!response.ok) {
    showError(`This recording cannot be shown: ${(await response.text()).trim()}`);
    el.play.disabled = true;
    return;
  }
  info = await response.json();
  el.title.textContent = `Replay of ${info.room_type} room ${info.room}`;
  document.title = el.title.textContent;
  if (!info.page) {
    showError(`The ${info.room_type} game has no page to show its recording with.`);
    return;
  }
  if (info.players.length === 0) {
    showError("Nobody played in this recording.");
    return;
  }
  el.seek.min = String(info.start_tick);
  el.seek.max = String(info.end_tick);
  for (const p of info.players) {
    const left = p.to === null ? "" : `, left at ${clockText(p.to - info.start_tick)}`;
    const option = document.createElement("option");
    option.value = String(p.id);
    option.textContent = `Player ${p.id} (from ${clockText(p.from - info.start_tick)}${left})`;
    el.follow.append(option);
  }
  const asked = Number(new URLSearchParams(location.search).get("follow"));
  showGame(info.players.some((p) => p.id === asked) ? asked : info.players[0].id);
  setInterval(poll, 250);
}

el.play.addEventListener("click", () => {
  if (!control) return;
  if (control.paused && control.tick >= control.end_tick) {
    // Played to the end: play again from the start. The frame's session
    // stopped at the end, so it is shown again too.
    steer({ seek: String(info.start_tick), pause: "0" }).then(() => showGame(follow));
    return;
  }
  steer({ pause: control.paused ? "0" : "1" });
});
el.speed.addEventListener("change", () => steer({ speed: el.speed.value }));
el.seek.addEventListener("input", () => {
  seeking = true;
  el.clock.textContent = `${clockText(Number(el.seek.value) - info.start_tick)} / ${clockText(info.end_tick - info.start_tick)}`;
});
el.seek.addEventListener("change", () => {
  seeking = false;
  const ended = control && control.paused && control.tick >= control.end_tick;
  steer({ seek: el.seek.value }).then(() => {
    if (ended) showGame(follow);
  });
});
el.follow.addEventListener("change", () => showGame(Number(el.follow.value)));

Object.defineProperty(window, "__replay", {
  value: Object.freeze({
    get info() {
      return info;
    },
    get stream() {
      return stream;
    },
    get control() {
      return control && { ...control };
    },
    get follow() {
      return follow;
    },
    get frameUrl() {
      return frameUrl;
    },
    get error() {
      return error;
    },
  }),
  enumerable: false,
  writable: false,
  configurable: false,
});

start().catch((e) => showError(`This recording cannot be shown: ${e.message}`));
