"use strict";
// The demo chat's browser side: socket.io-client, used as any Socket.IO app
// uses it, against `roomcast serve --chat` (the events of examples/rust/chat.rs).
// Every piece of user text goes through textContent, never innerHTML.
const $ = (id) => document.getElementById(id);
const ui = {
  login: $("login"), name: $("name"), room: $("room"), loginError: $("login-error"),
  chat: $("chat"), me: $("me"), meName: $("me-name"), status: $("status"), state: $("state"),
  rooms: $("rooms"), addRoom: $("add-room"), newRoom: $("new-room"), roomTitle: $("room-title"),
  leave: $("leave"), messages: $("messages"), typing: $("typing"), compose: $("compose"),
  text: $("text"), members: $("members"),
};
const ACK_TIMEOUT = 5000;
const TYPING_SHOWN_MS = 3000;

let socket = null;
let me = "";
let current = null; // the room on screen
let connectedOnce = false;
let autoAway = false; // the page set "away" because it was hidden
let lastTyping = 0;
/** room -> { lines: [{cls, who, text}], members: Map(name -> status), typing: Map(name -> until), unread } */
const rooms = new Map();

function setState(state, detail) {
  ui.state.dataset.state = state;
  ui.state.textContent = detail ? `${state} · ${detail}` : state;
}

function roomState(room) {
  let r = rooms.get(room);
  if (!r) {
    r = { lines: [], members: new Map(), typing: new Map(), unread: 0 };
    rooms.set(room, r);
  }
  return r;
}

function line(room, cls, who, text) {
  const r = rooms.get(room);
  if (!r) return;
  r.lines.push({ cls, who, text });
  if (room === current) appendLine(r.lines[r.lines.length - 1]);
  else {
    r.unread++;
    renderRooms();
  }
}
const sys = (room, text, cls = "sys") => line(room, cls, null, text);
const everywhere = (text, cls) => rooms.forEach((_, room) => sys(room, text, cls));

function appendLine({ cls, who, text }) {
  const li = document.createElement("li");
  li.className = cls;
  if (who !== null) {
    const b = document.createElement("span");
    b.className = "who";
    b.textContent = who;
    li.appendChild(b);
  }
  li.appendChild(document.createTextNode(text));
  const box = ui.messages;
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
  box.appendChild(li);
  if (atBottom || cls.includes("mine")) box.scrollTop = box.scrollHeight;
}

function renderRooms() {
  ui.rooms.replaceChildren(...[...rooms].map(([room, r]) => {
    const li = document.createElement("li");
    li.dataset.room = room;
    li.textContent = "#" + room;
    if (room === current) li.className = "active";
    if (r.unread) {
      const n = document.createElement("span");
      n.className = "unread";
      n.textContent = r.unread;
      li.appendChild(n);
    }
    li.addEventListener("click", () => show(room));
    return li;
  }));
}

function renderMembers() {
  const r = rooms.get(current);
  const members = r ? [...r.members].sort(([a], [b]) => a.localeCompare(b)) : [];
  ui.members.replaceChildren(...members.map(([name, status]) => {
    const li = document.createElement("li");
    li.dataset.name = name;
    li.dataset.status = status;
    li.textContent = name === me ? `${name} (you)` : name;
    if (name === me) li.className = "self";
    const s = document.createElement("span");
    s.className = "status";
    s.textContent = status;
    li.appendChild(s);
    return li;
  }));
}

function renderTyping() {
  const r = rooms.get(current);
  const now = Date.now();
  const names = r ? [...r.typing].filter(([, until]) => until > now).map(([n]) => n) : [];
  ui.typing.textContent = names.length === 0 ? ""
    : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}
setInterval(renderTyping, 500);

function show(room) {
  current = room;
  const r = rooms.get(room);
  ui.roomTitle.textContent = room ? "#" + room : "no room";
  ui.messages.replaceChildren();
  if (r) {
    r.unread = 0;
    r.lines.forEach(appendLine);
  }
  ui.leave.disabled = !r;
  renderRooms();
  renderMembers();
  renderTyping();
}

async function ask(event, data) {
  return socket.timeout(ACK_TIMEOUT).emitWithAck(event, data);
}

/** Who is in the room now, and their status (presence events keep it current). */
async function refreshMembers(room) {
  const members = await ask("who", { room });
  const r = roomState(room);
  r.members = new Map(members.map((m) => [m.name, m.status]));
  if (room === current) renderMembers();
}

async function join(room, again = false) {
  try {
    const reply = await ask("join", { room });
    if (!reply || !reply.ok) throw new Error("refused");
    roomState(room);
    sys(room, again ? `Rejoined #${room}` : `You joined #${room} as ${me}`);
    await refreshMembers(room);
    if (!again) show(room);
  } catch (e) {
    sys(current ?? room, `Could not join #${room}: ${e.message}`, "error");
  }
}

function start(name, firstRoom) {
  me = name;
  ui.meName.textContent = name;
  setState("connecting");
  // Long-polling first, then the upgrade to WebSocket: socket.io-client's defaults.
  socket = io({ auth: { name } });
  socket.on("connect", () => {
    setState("connected", socket.io.engine.transport.name);
    socket.io.engine.once("upgrade", (t) => setState("connected", t.name));
    if (socket.recovered) {
      // Same sid and rooms; what was missed follows this line, in order.
      everywhere("Reconnected: session recovered, missed messages follow", "sys recovered");
      rooms.forEach((_, room) => refreshMembers(room).catch(() => {}));
    } else if (connectedOnce) {
      everywhere("Reconnected with a new session (messages meanwhile are lost)");
      rooms.forEach((_, room) => join(room, true));
    } else {
      join(firstRoom);
    }
    connectedOnce = true;
    if (ui.status.value !== "online") ask("status", { status: ui.status.value }).catch(() => {});
  });
  socket.on("disconnect", (reason) => {
    const again = socket.active; // false after "io server disconnect" / "io client disconnect"
    setState(again ? "reconnecting" : "disconnected", reason);
    everywhere(`Connection lost (${reason})` + (again ? ", reconnecting…" : ""), "sys");
    rooms.forEach((r) => r.members.clear());
    renderMembers();
  });
  socket.io.on("reconnect_attempt", (n) => setState("reconnecting", `attempt ${n}`));
  socket.on("connect_error", (err) => {
    if (socket.active) {
      setState("reconnecting", err.message);
      return;
    }
    // Refused by the server (here: no name); back to the form.
    setState("disconnected");
    ui.loginError.textContent = `Refused: ${err.message}`;
    ui.loginError.hidden = false;
    ui.login.hidden = false;
    ui.chat.hidden = true;
    ui.me.hidden = true;
  });

  socket.on("said", ({ room, name, text }) => line(room, name === me ? "chat mine" : "chat", name, text));
  socket.on("joined", ({ room, name }) => sys(room, `${name} joined`));
  socket.on("left", ({ room, name }) => sys(room, `${name} left`));
  socket.on("typing", ({ room, name }) => {
    roomState(room).typing.set(name, Date.now() + TYPING_SHOWN_MS);
    if (room === current) renderTyping();
  });
  const member = (m, present) => {
    const r = rooms.get(m.room);
    if (!r) return;
    if (present) r.members.set(m.userId, m.meta?.status ?? "online");
    else r.members.delete(m.userId);
    r.typing.delete(m.userId);
    if (m.room === current) renderMembers();
  };
  socket.on("presence:join", (m) => member(m, true));
  socket.on("presence:update", (m) => member(m, true));
  socket.on("presence:leave", (m) => member(m, false));
}

ui.login.addEventListener("submit", (e) => {
  e.preventDefault();
  const name = ui.name.value.trim().slice(0, 32);
  const room = ui.room.value.trim() || "lobby";
  if (!name) return;
  ui.loginError.hidden = true;
  ui.login.hidden = true;
  ui.chat.hidden = false;
  ui.me.hidden = false;
  show(null);
  if (socket) socket.close();
  start(name, room);
  ui.text.focus();
});

ui.addRoom.addEventListener("submit", (e) => {
  e.preventDefault();
  const room = ui.newRoom.value.trim();
  ui.newRoom.value = "";
  if (!room) return;
  if (rooms.has(room)) show(room);
  else join(room);
});

ui.leave.addEventListener("click", () => {
  const room = current;
  if (!room) return;
  socket.emit("leave", { room });
  rooms.delete(room);
  show(rooms.keys().next().value ?? null);
});

ui.compose.addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = ui.text.value.trim();
  const room = current;
  if (!text || !room) return;
  ui.text.value = "";
  ui.text.focus();
  // Our own line comes back with everyone else's ("said" goes to the whole room).
  try {
    if (!(await ask("say", { room, text }))) sys(room, "Not sent: you are not in this room", "error");
  } catch {
    sys(room, `Not sent (no answer in ${ACK_TIMEOUT / 1000} s): ${text}`, "error");
  }
});

ui.text.addEventListener("input", () => {
  const now = Date.now();
  if (!current || !socket?.connected || now - lastTyping < 1000) return;
  lastTyping = now;
  socket.volatile.emit("typing", { room: current }); // stale if late: dropped rather than queued
});

function setStatus(status) {
  ui.status.value = status;
  if (socket?.connected) ask("status", { status }).catch(() => {});
}
ui.status.addEventListener("change", () => {
  autoAway = false;
  setStatus(ui.status.value);
});
// Away while the tab is hidden, online again when it is back (unless chosen otherwise).
document.addEventListener("visibilitychange", () => {
  if (document.hidden && ui.status.value === "online") {
    autoAway = true;
    setStatus("away");
  } else if (!document.hidden && autoAway) {
    autoAway = false;
    setStatus("online");
  }
});
