// lobby.js: the lobby page at / (index.html). It shows the games this
// server hosts (GET /rooms/types) as cards with a quick-play button and a
// private-room button each, resolves an invite code typed into the form
// (GET /rooms/code/CODE, then opens that game's page with ?code=), and
// lists the open public rooms (GET /rooms, refreshed on demand and every
// few seconds while the page is visible) with a Join button that opens
// the room's page with ?room=, and, for a type that allows spectators, a
// Watch button that opens it as a spectator (?watch=live&ws=/watch/ID/ws).
//
// Not for sessions: the lobby opens no WebSocket. Every game's page runs
// its own session (session.js). Not for any one game's rules either: what
// the lobby knows of a game beyond the server's listing is presentation
// (a title, a line of description, the values of its quick-join options).
//
// Query-string options: the session options of the game pages (ws,
// backoffBase, backoffMax, pingInterval, pongTimeout, connectTimeout; see
// session.js) are passed on to every game page the lobby opens, so a test
// or a proxy setup can go through the lobby like a player.
//
// Debug hook, read-only: window.__lobby has getters for `types` and `rooms`
// (the last listings read) and `error` (the last error shown in the form).

import { normalizeCode } from "./session.js";

/** How often the room list refreshes itself while the page is visible. */
const REFRESH_MS = 5000;

/** Query parameters handed on to the game pages. */
const PASS_THROUGH = ["ws", "backoffBase", "backoffMax", "pingInterval", "pongTimeout", "connectTimeout"];

/**
 * How the lobby presents the games it knows: a title, a line for players,
 * and the labelled values of quick-join options (the type's filter_by
 * keys). A game it does not know is shown by its name.
 */
const KNOWN = {
  arena: {
    title: "Arena",
    blurb: "A real-time free-for-all: race other players around the field and collect the gold.",
    art: "◎",
    choices: { pace: [["fast", "Fast pace"]] },
  },
  four: {
    title: "Four in a Row",
    blurb: "The classic for two: drop discs, line up four before your opponent does.",
    art: "●",
  },
};

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const el = {
  games: $("games"),
  form: $("join-code"),
  code: $("code-input"),
  codeError: $("code-error"),
  submit: $("code-submit"),
  filter: $("rooms-filter"),
  refresh: $("refresh"),
  status: $("rooms-status"),
  table: $("rooms"),
  body: $("rooms-body"),
  empty: $("rooms-empty"),
};

let types = [];
let rooms = [];
let lastError = "";

function titleOf(name) {
  return KNOWN[name]?.title ?? name.charAt(0).toUpperCase() + name.slice(1);
}

/** A link to a game's page with `extra` parameters and the passed-through ones. */
function pageLink(page, extra = {}) {
  const q = new URLSearchParams(extra);
  for (const key of PASS_THROUGH) {
    const value = params.get(key);
    if (value !== null) q.set(key, value);
  }
  const query = q.toString();
  return query ? `${page}?${query}` : page;
}

function make(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw Object.assign(new Error(`${path}: ${response.status}`), { status: response.status });
  return response.json();
}

// ---- the games ----

function gameCard(t) {
  const known = KNOWN[t.name] ?? {};
  const actions = make("div", { className: "actions" });
  if (t.page) {
    actions.append(
      make("a", { className: "button primary", href: pageLink(t.page) }, "Quick play"),
    );
    for (const key of t.filter_by) {
      for (const [value, label] of known.choices?.[key] ?? []) {
        actions.append(make("a", { className: "button", href: pageLink(t.page, { [key]: value }) }, label));
      }
    }
    actions.append(make("a", { className: "button", href: pageLink(t.page, { create: "private" }) }, "Private room"));
  } else {
    actions.append(make("span", { className: "meta" }, "This game has no page on this server."));
  }
  const players = t.capacity === 2 ? "2 players" : `Up to ${t.capacity} players`;
  return make(
    "article",
    { className: "card", dataset: { type: t.name } },
    make("div", { className: "art", "aria-hidden": "true" }, known.art ?? "◆"),
    make("h3", {}, titleOf(t.name)),
    make("p", {}, known.blurb ?? `Play ${t.name} with others.`),
    make("p", { className: "meta" }, players),
    actions,
  );
}

async function loadTypes() {
  try {
    types = await getJson("/rooms/types");
  } catch {
    el.games.replaceChildren(make("p", { className: "empty" }, "Could not reach the server. Reload the page to try again."));
    return;
  }
  el.games.replaceChildren(...(types.length ? types.map(gameCard) : [make("p", { className: "empty" }, "No games here yet.")]));
  el.filter.replaceChildren(
    make("option", { value: "" }, "All games"),
    ...types.map((t) => make("option", { value: t.name }, titleOf(t.name))),
  );
  renderRooms();
}

// ---- the open rooms ----

function statusPill(room) {
  const status = room.metadata.status ?? (room.players < room.capacity ? "open" : "full");
  return make("span", { className: "pill", dataset: { status } }, status.charAt(0).toUpperCase() + status.slice(1));
}

/**
 * A link that watches room `r` on its game's page as a spectator, for a
 * room of this server whose type allows it (a room on another cluster
 * node is not watched through this one).
 */
function watchLink(r, page) {
  const type = types.find((t) => t.name === r.type);
  if (!type?.spectators || r.node !== undefined) return null;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = `${scheme}//${location.host}/watch/${r.id}/ws`;
  return make("a", { className: "button", href: pageLink(page, { watch: "live", ws }), "aria-label": `Watch ${titleOf(r.type)} room ${r.id}` }, "Watch");
}

function renderRooms() {
  const page = Object.fromEntries(types.map((t) => [t.name, t.page]));
  const shown = rooms.filter((r) => page[r.type]);
  el.table.hidden = shown.length === 0;
  el.empty.hidden = shown.length > 0;
  el.empty.textContent = "No open rooms right now. Start one with Quick play.";
  el.body.replaceChildren(
    ...shown.map((r) => {
      const full = r.players >= r.capacity;
      const join = full
        ? make("button", { type: "button", disabled: true }, "Full")
        : make("a", { className: "button primary", href: pageLink(page[r.type], { room: String(r.id) }), "aria-label": `Join ${titleOf(r.type)} room ${r.id}` }, "Join");
      return make(
        "tr",
        { dataset: { room: String(r.id), type: r.type } },
        make("td", {}, titleOf(r.type)),
        make("td", {}, `#${r.id}`),
        make("td", {}, `${r.players} / ${r.capacity}`),
        make("td", {}, statusPill(r)),
        make("td", {}, join, watchLink(r, page[r.type]) ?? ""),
      );
    }),
  );
}

let loadingRooms = null;

async function loadRooms() {
  // One request at a time: a slow answer must not be overtaken by an older one.
  if (loadingRooms) return loadingRooms;
  const type = el.filter.value;
  loadingRooms = (async () => {
    try {
      rooms = await getJson(type ? `/rooms?type=${encodeURIComponent(type)}` : "/rooms");
      el.status.textContent = `${rooms.length} open ${rooms.length === 1 ? "room" : "rooms"}`;
    } catch {
      el.status.textContent = "Could not load the rooms.";
      el.empty.hidden = false;
      el.table.hidden = true;
      el.empty.textContent = "Could not load the rooms. Try Refresh.";
      return;
    } finally {
      loadingRooms = null;
    }
    renderRooms();
  })();
  return loadingRooms;
}

el.refresh.addEventListener("click", () => loadRooms());
el.filter.addEventListener("change", () => loadRooms());
setInterval(() => {
  if (document.visibilityState === "visible") loadRooms();
}, REFRESH_MS);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") loadRooms();
});

// ---- join by code ----

function showCodeError(text) {
  lastError = text;
  el.codeError.textContent = text;
}

el.form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const code = normalizeCode(el.code.value);
  if (!code) {
    showCodeError("Invite codes are 8 letters and digits, like K7M2-XQ9P.");
    el.code.focus();
    return;
  }
  showCodeError("");
  el.submit.disabled = true;
  try {
    const room = await getJson(`/rooms/code/${code}`);
    if (!room.page) {
      showCodeError(`That room plays ${titleOf(room.type)}, which has no page on this server.`);
      return;
    }
    location.assign(pageLink(room.page, { code }));
  } catch (err) {
    if (err.status === 404) showCodeError("No open room has that code. Check it with whoever sent it.");
    else if (err.status === 429) showCodeError("Too many tries with codes. Wait a minute, then try again.");
    else showCodeError("Could not reach the server. Try again in a moment.");
  } finally {
    el.submit.disabled = false;
  }
});

// ---- debug hook ----

Object.defineProperty(window, "__lobby", {
  value: Object.freeze({
    get types() {
      return types;
    },
    get rooms() {
      return rooms;
    },
    get error() {
      return lastError;
    },
  }),
  enumerable: false,
  writable: false,
  configurable: false,
});

loadTypes().then(loadRooms);
