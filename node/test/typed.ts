// Type-checked by `tsc --noEmit` (make test): the facade's types as an app uses them.
import { Server, type Socket } from "roomcast";
import { io } from "roomcast/client";

async function main(): Promise<void> {
  const server = new Server({ pingInterval: 10_000, cors: { origin: ["https://app.example"] } });
  server.use((socket: Socket, next) => (socket.handshake.auth.token ? next() : next(new Error("no token"))));
  server.on("connection", (socket) => {
    socket.join(["lobby", `user:${socket.handshake.auth.token}`]);
    socket.on("chat", (text: string, ack?: (ok: boolean) => void) => {
      socket.to("lobby").emit("chat", { from: socket.id, text });
      ack?.(true);
    });
    socket.on("disconnect", (reason) => console.log(socket.id, reason));
  });
  const port: number = await server.listen(0);
  const client = io(`http://127.0.0.1:${port}`, { auth: { token: "t" }, reconnectionDelay: 500 });
  client.on("connect_error", (err) => console.log(err.message, err.data));
  const ok: boolean = await client.timeout(1000).emitWithAck("chat", "hello");
  const replies: unknown[] = await server.timeout(1000).emitWithAck("ping");
  const sockets: Socket[] = await server.in("lobby").fetchSockets();
  console.log(ok, replies.length, sockets.map((s) => [...s.rooms]));
  client.disconnect();
  await server.close();
}

void main();
