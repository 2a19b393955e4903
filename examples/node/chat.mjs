// Chat with rooms on roomcast, the socket.io way.
//
//   npm install roomcast && node chat.mjs        # serves on 127.0.0.1:3000 (PORT to change)
//
// Clients (socket.io-client, python-socketio) connect with auth {name} and
// emit `join` {room}, `say` {room, text} and `leave` {room}; everyone in the
// room gets `joined`, `said` and `left`. Ctrl-C / SIGTERM close it cleanly.
import { Server } from "roomcast";

export function createServer() {
  const io = new Server();
  io.use((socket, next) => {
    const name = socket.handshake.auth.name;
    if (typeof name !== "string" || !name.trim()) return next(new Error("pick a name first"));
    socket.data.name = name.trim().slice(0, 32);
    next();
  });
  io.on("connection", (socket) => {
    const { name } = socket.data;
    socket.on("join", ({ room }, ack) => {
      socket.join(room);
      socket.to(room).emit("joined", { room, name });
      ack?.({ ok: true, rooms: [...socket.rooms].filter((r) => r !== socket.id) });
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
  });
  return io;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const io = createServer();
  const port = await io.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? "127.0.0.1");
  console.log(`chat on http://127.0.0.1:${port}`);
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => io.close());
}
