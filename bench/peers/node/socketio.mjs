// bench/APP.md Socket.IO peer: Node socket.io 4.8 on its default `ws` engine.
//
//   PORT=0 node bench/peers/node/socketio.mjs      → prints "PORT <n>" once listening
//   REDIS_URL=redis://127.0.0.1:6379 PORT=0 node bench/peers/node/socketio.mjs
//                                                  → the same app as a node of a cluster (B4):
//                                                    @socket.io/redis-adapter 8.3 on the `redis` client
//
// Listens on 127.0.0.1:$PORT (0 = a free port). Exits when stdin closes or on SIGTERM.
// One process, no cluster module. Quiet: nothing is logged unless something fails.
import { createServer } from "node:http";
import { Server } from "socket.io";

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ["websocket", "polling"],
  serveClient: false,
  perMessageDeflate: false,
});

const fail = (what, err) => {
  console.error(`socketio peer: ${what}: ${err?.message ?? err}`);
  process.exit(1);
};

// B4: every node publishes the room's broadcasts on Redis and hears the others'.
const redisUrl = process.env.REDIS_URL?.trim();
if (redisUrl) {
  const [{ createAdapter }, { createClient }] = await Promise.all([
    import("@socket.io/redis-adapter"),
    import("redis"),
  ]);
  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) c.on("error", (err) => console.error(`socketio peer: redis: ${err.message}`));
  try {
    await Promise.all([pubClient.connect(), subClient.connect()]);
  } catch (err) {
    fail(`cannot connect to ${redisUrl}`, err);
  }
  io.adapter(createAdapter(pubClient, subClient));
  // The adapter subscribes without telling when it is done: a round trip on the
  // subscriber connection after it means Redis has handled that subscription
  // (undone at once, so that Redis matches no extra pattern per publish).
  await subClient.pSubscribe("roomcast-bench-ready#*", () => {});
  await subClient.pUnsubscribe("roomcast-bench-ready#*");
}

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

httpServer.on("error", (err) => fail("listen", err));
httpServer.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stdout.write(`PORT ${httpServer.address().port}\n`);
});
