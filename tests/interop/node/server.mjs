// A real socket.io 4.8 server for the Rust Socket.IO client's interop tests
// (core/tests/interop_client.rs). Listens on 127.0.0.1 at a free port, prints
// `PORT <n>` as its first line of stdout, and exits when stdin closes.
import { createServer } from "node:http";
import { Server } from "socket.io";

const httpServer = createServer();
// Short heartbeats, so that every test sees several pings and a client that
// stopped answering them would be dropped within its run.
const io = new Server(httpServer, { pingInterval: 300, pingTimeout: 1000 });

// Events recorded per key, for the ordering checks across reconnections.
const records = new Map();

// socket.io passes the ack callback last when the client asked for one.
const split = (args) => (typeof args.at(-1) === "function" ? [args.slice(0, -1), args.at(-1)] : [args, null]);

io.on("connection", (socket) => {
  socket.emit("welcome", { id: socket.id, auth: socket.handshake.auth });

  socket.on("echo", (...all) => {
    const [args, ack] = split(all);
    if (ack) ack(...args);
    else socket.emit("echo", ...args);
  });

  // Server -> client ack: ask the client `question` and report its answer.
  socket.on("ask", async (...all) => {
    const [args, ack] = split(all);
    try {
      const answer = await socket.timeout(2000).emitWithAck("question", ...args);
      ack({ answer });
    } catch (e) {
      ack({ error: e.message });
    }
  });

  // Server -> client binary event.
  socket.on("send_blob", () => socket.emit("blob", Buffer.from([1, 2, 3]), { nested: [Buffer.from([4, 5])] }));

  // Server -> client ack answered with binary: describe what came back.
  socket.on("ask_binary", async (ack) => {
    const reply = await socket.timeout(2000).emitWithAck("binq", Buffer.from([9]));
    ack({ isBuffer: Buffer.isBuffer(reply), hex: Buffer.isBuffer(reply) ? reply.toString("hex") : null });
  });

  // Binary arguments from the client, described.
  socket.on("describe", (...all) => {
    const [args, ack] = split(all);
    ack(args.map((a) => (Buffer.isBuffer(a) ? `buffer:${a.toString("hex")}` : typeof a)));
  });

  socket.on("never_acks", () => {});

  socket.on("kick_me", () => socket.disconnect());

  // Drop the Engine.IO connection under the socket: the client sees
  // "transport close" and reconnects.
  socket.on("drop_transport", () => socket.conn.close());

  socket.on("record", (key, value) => {
    if (!records.has(key)) records.set(key, []);
    records.get(key).push(value);
  });
  socket.on("records", (key, ack) => ack(records.get(key) ?? []));
});

const admin = io.of("/admin");
admin.use((socket, next) =>
  socket.handshake.auth.token === "secret"
    ? next()
    : next(Object.assign(new Error("not authorized"), { data: { code: 42 } })),
);
admin.on("connection", (socket) => {
  socket.on("whoami", (ack) => ack({ nsp: socket.nsp.name, id: socket.id }));
});

httpServer.listen(0, "127.0.0.1", () => {
  console.log(`PORT ${httpServer.address().port}`);
});

process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
