// bench/APP.md Socket.IO peer: Node socket.io 4.8 on its default `ws` engine.
//
//   PORT=0 node bench/peers/node/socketio.mjs      → prints "PORT <n>" once listening
//
// Listens on 127.0.0.1:$PORT (0 = a free port). Exits when stdin closes or on SIGTERM.
// One process, no cluster. Quiet: nothing is logged unless something fails.
import { createServer } from "node:http";
import { Server } from "socket.io";

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ["websocket", "polling"],
  serveClient: false,
  perMessageDeflate: false,
});

io.on("connection", (socket) => {
  socket.join("bench");
  // publish P → msg P to room "bench" except the sender.
  socket.on("publish", (p) => {
    socket.to("bench").emit("msg", p);
  });
  // echo D + ack → the ack carries D.
  socket.on("echo", (d, ack) => {
    if (typeof ack === "function") ack(d);
  });
});

const exit = () => process.exit(0);
process.on("SIGTERM", exit);
process.stdin.on("end", exit);
process.stdin.on("close", exit);
process.stdin.on("error", exit);
process.stdin.resume();

httpServer.on("error", (err) => {
  console.error(`socketio peer: ${err.message}`);
  process.exit(1);
});
httpServer.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stdout.write(`PORT ${httpServer.address().port}\n`);
});
