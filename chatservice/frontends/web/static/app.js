// The chat page: one WebSocket to /ws speaking the JSON protocol of WEBSOCKET.md.
import { el, renderLines, appendLine } from "./view.js";

const $ = (id) => document.getElementById(id);
const MAX_LINES = 1000;        // lines kept per conversation
const PAGE = 50;               // older lines fetched per scroll-up
const CATCH_UP = 200;          // lines fetched per room after a reconnect
const BACKOFF_MAX = 30;        // seconds between reconnection attempts, at most

const state = {
  ws: null, name: null, creds: null, register: null, quitting: false,
  backoff: 1, everLoggedIn: false, reconnecting: false,
  convs: new Map(),            // key ("#room" or "@name", lower case) -> conversation
  view: null,                  // the key shown
  serverCurrent: null,
};

function key(kind, name) { return (kind === "room" ? "#" : "@") + name.toLowerCase(); }

function conv(kind, name) {
  const k = key(kind, name);
  let c = state.convs.get(k);
  if (!c) {
    c = { kind, name, lines: [], unread: 0, topic: "", members: new Map(), lastDay: null,
          seen: new Set(), loading: false, done: false, joined: kind === "private" };
    state.convs.set(k, c);
  }
  return c;
}

// Lines from history are matched with those shown by their second, kind, sender and text.
function lineKey(line) { return `${Math.floor(line.when)}|${line.kind}|${line.sender}|${line.text}`; }

function add(c, line, fromHistory = false) {
  const k = lineKey(line);
  if (fromHistory && c.seen.has(k)) return;
  if (line.when) c.seen.add(k);
  c.lines.push(line);
  if (c.lines.length > MAX_LINES) c.lines.splice(0, c.lines.length - MAX_LINES);
  if (state.view === key(c.kind, c.name)) {
    const log = $("log");
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    c.lastDay = appendLine(log, line, c.lastDay);
    if (atBottom) log.scrollTop = log.scrollHeight;
  } else if (line.kind === "say" || line.kind === "act") {
    c.unread += 1;
    renderList();
  }
}

function notice(text, kind = "notice") {
  const c = state.view ? state.convs.get(state.view) : null;
  if (c) add(c, { kind, text, when: Date.now() / 1000 });
  else $("login-error").textContent = text;
}

// -- the lists -----------------------------------------------------------

function renderList() {
  for (const [listId, kind] of [["rooms", "room"], ["privates", "private"]]) {
    const list = $(listId);
    list.replaceChildren();
    for (const [k, c] of state.convs) {
      if (c.kind !== kind || (kind === "room" && !c.joined)) continue;
      const label = kind === "room" ? `#${c.name}` : c.name;
      const button = el("button", { type: "button", "data-key": k },
                        el("span", { text: label }));
      if (c.unread) {
        button.append(el("span", { class: "unread", text: String(c.unread),
                                   "aria-label": `${c.unread} unread` }));
      }
      if (k === state.view) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => show(k));
      list.append(el("li", {}, button));
    }
  }
}

function renderMembers() {
  const c = state.convs.get(state.view);
  const list = $("members");
  list.replaceChildren();
  $("members-title").textContent = c && c.kind === "room" ? `Members (${c.count ?? c.members.size})` : "Members";
  if (!c || c.kind !== "room") return;
  const names = [...c.members.entries()].sort((a, b) => rank(a[1]) - rank(b[1]) || a[0].localeCompare(b[0]));
  for (const [name, prefix] of names) {
    const b = el("button", { type: "button", text: (prefix ? prefix[0] : "") + name,
                             "aria-label": `${name}${prefix.includes("@") ? ", operator" : prefix.includes("+") ? ", voiced" : ""}: send a private message` });
    b.addEventListener("click", () => { if (name !== state.name) show(key("private", name), name); });
    list.append(el("li", {}, b));
  }
}

function rank(prefix) { return prefix.includes("@") ? 0 : prefix.includes("+") ? 1 : 2; }

function show(k, privateName) {
  if (!state.convs.has(k) && privateName) conv("private", privateName);
  const c = state.convs.get(k);
  if (!c) return;
  state.view = k;
  c.unread = 0;
  $("conv-title").textContent = c.kind === "room" ? `#${c.name}` : `Private: ${c.name}`;
  $("topic").textContent = c.kind === "room" ? (c.topic || "") : "";
  $("older").hidden = c.kind !== "room" || c.done;
  const log = $("log");
  renderLines(log, c.lines);
  c.lastDay = c.lines.length ? new Date(c.lines[c.lines.length - 1].when * 1000).toDateString() : null;
  log.scrollTop = log.scrollHeight;
  renderList();
  renderMembers();
  if (c.kind === "room" && state.serverCurrent !== c.name.toLowerCase() && state.ws) {
    send({ type: "join", room: c.name });   // make it the server's current room too
  }
}

// -- the socket ----------------------------------------------------------

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws`);
  state.ws = ws;
  ws.addEventListener("message", (e) => {
    let data;
    try { data = JSON.parse(e.data); } catch { return; }
    for (const m of Array.isArray(data) ? data : [data]) handle(m);
  });
  ws.addEventListener("close", () => {
    state.ws = null;
    if (state.quitting) { $("status").textContent = "You left the chat. Reload the page to come back."; return; }
    const wait = state.backoff;
    state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX);
    $("status").textContent = `Disconnected; reconnecting in ${wait} s…`;
    state.reconnecting = state.everLoggedIn;
    setTimeout(connect, (wait + Math.random() * 0.5) * 1000);
  });
}

const handlers = {
  hello(m) {
    $("server").textContent = m.server;
    document.title = m.server;
    $("register-row").hidden = !m.accounts;
    $("status").textContent = "Connected";
    if (state.creds) send({ type: "login", ...state.creds });
    else showLogin();
  },
  login() { state.creds = null; showLogin(); },
  password(m) {
    state.creds = null;                // a saved password (reconnecting) was refused
    showLogin();
    $("login-name").value = m.name;
    $("password-row").hidden = false;
    $("register-row").hidden = true;
    $("new-password-row").hidden = true;
    $("login-error").textContent = $("login-error").textContent || `The name ${m.name} is registered: enter its password.`;
    $("login-password").focus();
  },
  welcome(m) {
    state.name = m.name;
    state.backoff = 1;
    $("login-view").hidden = true;
    $("chat-view").hidden = false;
    $("status").textContent = `Connected as ${m.name}`;
    if (state.register) { send({ type: "register", password: state.register }); state.creds.password = state.register; state.register = null; }
    if (state.reconnecting) rejoin();
    state.everLoggedIn = true;
    $("say").focus();
  },
  state(m) {
    state.name = m.name;
    if (state.creds) state.creds.name = m.name;
    const rooms = new Set(m.rooms.map((r) => r.toLowerCase()));
    for (const c of state.convs.values()) {
      if (c.kind === "room") c.joined = rooms.has(c.name.toLowerCase());
    }
    for (const r of m.rooms) conv("room", r).joined = true;
    state.serverCurrent = m.current ? m.current.toLowerCase() : null;
    const viewed = state.convs.get(state.view);
    const k = m.current ? key("room", m.current) : null;
    if (k && state.view !== k && (!viewed || viewed.kind === "room" || !viewed.joined)) show(k);
    else renderList();
  },
  room(m) {
    const c = conv("room", m.room);
    c.topic = m.topic;
    c.count = m.count;
    c.members = new Map(m.members.map((u) => [u.name, u.prefix]));
    if (state.view === key("room", m.room)) { $("topic").textContent = m.topic; renderMembers(); }
  },
  history(m) {
    const c = conv("room", m.room);
    const lines = m.lines.map((l) => ({ ...l, kind: l.kind }));
    if (m.request === "older") {
      c.loading = false;
      const older = lines.filter((l) => !c.seen.has(lineKey(l)));
      if (!older.length) { c.done = true; $("older").hidden = state.view === key("room", m.room) ? true : $("older").hidden; return; }
      for (const l of older) c.seen.add(lineKey(l));
      c.lines = older.concat(c.lines);
      if (state.view === key("room", m.room)) {
        const log = $("log");
        const fromBottom = log.scrollHeight - log.scrollTop;
        renderLines(log, c.lines);
        log.scrollTop = log.scrollHeight - fromBottom;
      }
      return;
    }
    const shown = c.lines.filter((l) => l.kind === "say" || l.kind === "act" || l.kind === "topic");
    const last = shown.length ? Math.floor(shown[shown.length - 1].when) : 0;
    for (const l of lines) if (!last || l.when >= last) add(c, l, true);
  },
  said(m) { add(conv("room", m.room), { kind: "say", sender: m.sender, text: m.text, when: m.when }); },
  acted(m) { add(conv("room", m.room), { kind: "act", sender: m.sender, text: m.text, when: m.when }); },
  joined(m) {
    const c = conv("room", m.room);
    c.members.set(m.user, ""); c.count = (c.count ?? 0) + 1;
    add(c, { kind: "notice", text: `→ ${m.user} joined #${m.room}`, when: m.when });
    if (state.view === key("room", m.room)) renderMembers();
  },
  left(m) {
    const c = conv("room", m.room);
    c.members.delete(m.user); c.count = Math.max(0, (c.count ?? 1) - 1);
    add(c, { kind: "notice", text: `← ${m.user} left #${m.room}${m.reason ? ` (${m.reason})` : ""}`, when: m.when });
    if (state.view === key("room", m.room)) renderMembers();
  },
  presence(m) {
    const c = conv("room", m.room);
    for (const u of m.joined) c.members.set(u, "");
    for (const u of m.left) c.members.delete(u);
    for (const [o, n] of m.renamed) { const p = c.members.get(o) || ""; c.members.delete(o); c.members.set(n, p); }
    const parts = [];
    if (m.joined.length) parts.push(`→ ${m.joined.join(", ")} joined`);
    if (m.left.length) parts.push(`← ${m.left.join(", ")} left`);
    for (const [o, n] of m.renamed) parts.push(`${o} is now known as ${n}`);
    add(c, { kind: "notice", text: parts.join("; "), when: Date.now() / 1000 });
    if (state.view === key("room", m.room)) renderMembers();
  },
  topic(m) {
    const c = conv("room", m.room);
    c.topic = m.topic;
    add(c, { kind: "topic", sender: m.user || "The server", text: m.topic, when: m.when });
    if (state.view === key("room", m.room)) $("topic").textContent = m.topic;
  },
  mode(m) {
    const c = conv("room", m.room);
    for (const [change, arg] of m.changes) {
      if (!c.members.has(arg)) continue;
      let p = c.members.get(arg);
      const letter = change[1] === "o" ? "@" : change[1] === "v" ? "+" : null;
      if (!letter) continue;
      p = change[0] === "+" ? (p.includes(letter) ? p : (letter === "@" ? "@" + p : p + "+")) : p.replace(letter, "");
      c.members.set(arg, p);
    }
    const said = m.changes.map(([c2, a]) => `${c2}${a ? " " + a : ""}`).join(" ");
    add(c, { kind: "notice", text: `${m.user || "The server"} set ${said}`, when: m.when });
    if (state.view === key("room", m.room)) renderMembers();
  },
  kicked(m) {
    const c = conv("room", m.room);
    c.members.delete(m.target);
    add(c, { kind: "notice", text: `← ${m.target} was kicked out of #${m.room} by ${m.user || "the server"}${m.reason ? ` (${m.reason})` : ""}`, when: m.when });
    if (state.view === key("room", m.room)) renderMembers();
  },
  closed(m) {
    const c = conv("room", m.room);
    add(c, { kind: "notice", text: `#${m.room} was closed by the server${m.reason ? `: ${m.reason}` : ""}`, when: Date.now() / 1000 });
    c.joined = false;
    renderList();
  },
  announcement(m) {
    const text = `Announcement: ${m.text}`;
    if (m.room) add(conv("room", m.room), { kind: "notice", text, when: Date.now() / 1000 });
    else notice(text);
  },
  invited(m) { notice(`${m.user} invites you to #${m.room}: type /join #${m.room} to enter`); },
  private(m) {
    const other = m.sender === state.name ? m.recipient : m.sender;
    add(conv("private", other), { kind: m.action ? "act" : "say", sender: m.sender, text: m.text, when: m.when });
    renderList();
  },
  kept(m) { add(conv("private", m.to), { kind: "notice", text: m.text, when: Date.now() / 1000 }); },
  offline(m) {
    for (const p of m.messages) {
      add(conv("private", p.sender), { kind: p.action ? "act" : "say", sender: p.sender, text: p.text, when: p.when });
    }
    renderList();
  },
  renamed(m) { renameEverywhere(m.old, m.new, m.when); },
  quit(m) {
    for (const c of state.convs.values()) {
      if (c.kind === "room" && c.members.delete(m.user)) {
        add(c, { kind: "notice", text: `← ${m.user} quit${m.reason ? ` (${m.reason})` : ""}`, when: m.when });
      }
    }
    renderMembers();
  },
  info(m) { notice(m.text); },
  error(m) {
    if (!$("login-view").hidden) $("login-error").textContent = m.text;
    else notice(m.text, "error");
  },
  bye(m) {
    if (/Goodbye, /.test(m.text)) state.quitting = true;
    if (/wrong passwords/.test(m.text)) state.creds = null;
    notice(m.text);
  },
  pong() {},
};

function renameEverywhere(oldName, newName, when) {
  for (const c of state.convs.values()) {
    if (c.kind === "room" && c.members.has(oldName)) {
      const p = c.members.get(oldName); c.members.delete(oldName); c.members.set(newName, p);
      add(c, { kind: "notice", text: `${oldName} is now known as ${newName}`, when });
    }
  }
  renderMembers();
}

function handle(m) {
  const f = handlers[m.type];
  if (f) f(m);
}

// After a reconnect: back into the rooms the page was in, and the lines missed meanwhile.
function rejoin() {
  const rooms = [...state.convs.values()].filter((c) => c.kind === "room" && c.joined);
  const viewed = state.convs.get(state.view);
  rooms.sort((a, b) => (a === viewed) - (b === viewed));   // the viewed room last: current
  for (const c of rooms) {
    send({ type: "join", room: c.name });
    send({ type: "history", room: c.name, limit: CATCH_UP, request: "catchup" });
  }
  state.reconnecting = false;
}

function showLogin() {
  $("chat-view").hidden = true;
  $("login-view").hidden = false;
  $("password-row").hidden = true;
  $("login-name").focus();
}

// -- the forms -------------------------------------------------------------

function wire() {
  $("login-register").addEventListener("change", (e) => { $("new-password-row").hidden = !e.target.checked; });
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    $("login-error").textContent = "";
    const name = $("login-name").value.trim();
    const password = $("password-row").hidden ? undefined : $("login-password").value;
    state.register = !$("register-row").hidden && $("login-register").checked ? $("login-new-password").value : null;
    state.creds = password ? { name, password } : { name };
    $("login-password").value = "";
    send({ type: "login", ...state.creds });
  });
  $("say-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("say");
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    const c = state.convs.get(state.view);
    if (/^\/(quit|logout|exit)\b/i.test(text)) state.quitting = true;
    if (c && c.kind === "private" && !text.startsWith("/")) send({ type: "msg", to: c.name, text });
    else send({ type: "input", text });
  });
  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const room = $("join-room").value.trim().replace(/^#/, "");
    if (room) send({ type: "join", room });
    $("join-room").value = "";
  });
  $("private-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("private-name").value.trim();
    if (name) { show(key("private", name), name); $("say").focus(); }
    $("private-name").value = "";
  });
  const older = () => {
    const c = state.convs.get(state.view);
    if (!c || c.kind !== "room" || c.loading || c.done) return;
    const first = c.lines.find((l) => l.when);
    c.loading = true;
    // a line read from the database has an id: pages before it reach any age
    send({ type: "history", room: c.name, limit: PAGE, request: "older",
           ...(first && first.id ? { before_id: first.id } : first ? { before: first.when } : {}) });
  };
  $("older").addEventListener("click", older);
  $("log").addEventListener("scroll", () => { if ($("log").scrollTop < 30) older(); });
  document.addEventListener("keydown", (e) => {   // Alt+Up / Alt+Down: previous / next conversation
    if (!e.altKey || (e.key !== "ArrowUp" && e.key !== "ArrowDown")) return;
    const keys = [...state.convs.entries()].filter(([, c]) => c.joined).map(([k]) => k);
    const i = keys.indexOf(state.view);
    const next = keys[(i + (e.key === "ArrowUp" ? keys.length - 1 : 1)) % keys.length];
    if (next) { e.preventDefault(); show(next); }
  });
}

wire();
connect();
