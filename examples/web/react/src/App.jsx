import { useEffect, useState } from "react";
import { typingNames } from "./chatState.js";
import { useRoom, useSocket } from "./useSocket.js";

export function App() {
  const [login, setLogin] = useState(null);
  if (!login) return <Login onLogin={setLogin} />;
  return <Chat name={login.name} room={login.room} />;
}

function Login({ onLogin }) {
  const [name, setName] = useState("");
  const [room, setRoom] = useState("lobby");
  const submit = (e) => {
    e.preventDefault();
    if (name.trim()) onLogin({ name: name.trim(), room: room.trim() || "lobby" });
  };
  return (
    <form className="card login" onSubmit={submit}>
      <h1>roomcast · React</h1>
      <label>
        Your name <input id="name" value={name} onChange={(e) => setName(e.target.value)} maxLength={32} />
      </label>
      <label>
        Room <input id="room" value={room} onChange={(e) => setRoom(e.target.value)} maxLength={64} />
      </label>
      <button type="submit">Join</button>
    </form>
  );
}

function Chat({ name, room }) {
  const { socket, connected, recovered, error } = useSocket(name);
  const chat = useRoom(socket, connected, room);
  const [text, setText] = useState("");
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, []);
  const send = async (e) => {
    e.preventDefault();
    if (!text.trim()) return;
    setText("");
    await chat.say(text.trim()).catch(() => {});
  };
  const state = connected ? "connected" : error ? "reconnecting" : "connecting";
  const typing = typingNames(chat, now).filter((n) => n !== name);
  const members = Object.entries(chat.members).sort(([a], [b]) => a.localeCompare(b));
  return (
    <div className="chat">
      <header>
        <h1>
          #{room} <span>as {name}</span>
        </h1>
        <select aria-label="Your status" onChange={(e) => chat.setStatus(e.target.value)} defaultValue="online">
          <option>online</option>
          <option>away</option>
          <option>busy</option>
        </select>
        <span id="state" data-state={state}>
          {state}
          {connected && recovered ? " · recovered" : ""}
        </span>
      </header>
      <main>
        <section className="card">
          <ul id="messages">
            {chat.lines.map((l, i) =>
              l.kind === "said" ? (
                <li key={i} className={l.name === name ? "mine" : ""}>
                  <b>{l.name}</b> {l.text}
                </li>
              ) : (
                <li key={i} className="notice">
                  {l.text}
                </li>
              ),
            )}
          </ul>
          <div id="typing">{typing.length ? `${typing.join(", ")} typing…` : ""}</div>
          <form onSubmit={send}>
            <input
              id="text"
              value={text}
              placeholder="Write a message…"
              onChange={(e) => (setText(e.target.value), chat.sendTyping())}
              disabled={!chat.joined}
            />
            <button type="submit" disabled={!chat.joined}>
              Send
            </button>
          </form>
        </section>
        <aside className="card">
          <h2>Here now</h2>
          <ul id="members">
            {members.map(([n, status]) => (
              <li key={n} data-name={n} data-status={status}>
                {n} <small>{status}</small>
              </li>
            ))}
          </ul>
        </aside>
      </main>
    </div>
  );
}
