// Chat with rooms and presence on roomcast, the socket.io way.
//
//   npm install roomcast && node chat.mjs        # serves on 127.0.0.1:3000 (PORT to change)
//
// Clients (socket.io-client, python-socketio) connect with auth {name}, which
// names their user, and emit `join` {room}, `say` {room, text}, `leave` {room},
// `typing` {room}, `status` {status} ("online", "away", "busy") and `who` {room}
// (acked with its members, [{name, status}] by name); everyone in the room gets `joined`,
// `said` and `left`, the others `typing` {room, name}, and presence's `presence:join` / `presence:leave` / `presence:update`
// (a member per user). Ctrl-C / SIGTERM close it cleanly.
import { Server } from "roomcast";

export function createServer() {
  const io = new Server();
  io.enablePresence();
  io.use((socket, next) => {
    const name = socket.handshake.auth.name;
    if (typeof name !== "string" || !name.trim()) return next(new Error("pick a name first"));
    socket.data.name = name.trim().slice(0, 32);
    socket.setUserId(socket.data.name);
    next();
  });
  io.on("connection", (socket) => {
    const { name } = socket.data;
    socket.on("join", ({ room }, ack) => {
      socket.join(room);
      socket.to(room).emit("joined", { room, name });
      // Not the socket's own room, nor its user's (`user:<name>`).
      const rooms = [...socket.rooms].filter((r) => r !== socket.id && !r.startsWith("user:"));
      ack?.({ ok: true, rooms });
    });
    socket.on("say", ({ room, text }, ack) => {
      if (!socket.rooms.has(room)) return ack?.(false);
      io.to(room).emit("said", { room, name, text });
      ack?.(true);
    });
    socket.on("leave", ({ room }) => {
      socket.leave(room);
      io.to(room).emit("left", { room, name });
    });
    socket.on("typing", ({ room }) => {
      if (socket.rooms.has(room)) socket.to(room).volatile.emit("typing", { room, name });
    });
    socket.on("status", ({ status }, ack) => {
      try {
        socket.setPresence({ status });
        ack?.(true);
      } catch {
        ack?.(false); // not online, away or busy
      }
    });
    socket.on("who", async ({ room }, ack) => {
      const members = (await io.presence(room)).sort((a, b) => (a.userId < b.userId ? -1 : 1));
      ack?.(members.map((m) => ({ name: m.userId, status: m.meta.status })));
    });
  });
  return io;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const io = createServer();
  const port = await io.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? "127.0.0.1");
  console.log(`chat on http://127.0.0.1:${port}`);
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => io.close());
}
