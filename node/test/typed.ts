// Type-checked by `tsc --noEmit` (make test): the facade's types as an app uses them.
import {
  RemoteSocket,
  Server,
  type BroadcastTimeoutError,
  type ClusterCount,
  type LostSocket,
  type Member,
  type PartialArray,
  type PresenceEvent,
  type ServerSideTimeoutError,
  type ServerStats,
  type Socket,
} from "roomcast";
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
  const sockets: PartialArray<Socket | RemoteSocket> = await server.in("lobby").fetchSockets();
  console.log(ok, replies.length, sockets.map((s) => [...s.rooms]));
  client.disconnect();
  await server.close();
}

// Connection state recovery.
async function recovery(): Promise<void> {
  const server = new Server({ connectionStateRecovery: { maxDisconnectionDuration: 60_000, skipMiddlewares: true } });
  server.on("connection", (socket) => {
    const back: boolean = socket.recovered;
    if (!back) socket.join("lobby");
  });
  const client = io(`http://127.0.0.1:${await server.listen(0)}`);
  client.on("connect", () => console.log(client.recovered));
  await server.close();
}

// Backpressure and at-least-once emits.
async function delivery(): Promise<void> {
  const server = new Server({
    outboundQueueMessages: 1024,
    outboundQueueBytes: 1 << 20,
    overflow: "drop",
    maxConnections: 10_000,
    maxConnectionsPerIp: 100,
    connectionRatePerIp: 5,
    connectionBurstPerIp: 20,
  });
  server.on("connection", async (socket) => {
    socket.volatile.emit("tick", Date.now());
    if (socket.bufferedAmount > 64 * 1024) await socket.drained();
    socket.emit("report", { bytes: socket.bufferedAmount });
  });
  const client = io(`http://127.0.0.1:${await server.listen(0)}`, { retries: 3, ackTimeout: 2000 });
  client.emit("save", { id: 1 }, (err: Error | null, saved: boolean) => console.log(err, saved));
  await server.close();
}

// Presence, on a node of a cluster.
async function presence(): Promise<void> {
  const server = new Server({ redis: { url: "redis://127.0.0.1:6379", prefix: "chat", nodeTtl: 5000 } });
  const other = new Server({ redis: "redis://127.0.0.1:6379" });
  server.enablePresence().of("/rooms").enablePresence("lobby");
  server.use((socket, next) => {
    socket.setUserId(String(socket.handshake.auth.userId));
    next();
  });
  server.on("connection", (socket) => {
    socket.join("lobby");
    const user: string | null = socket.userId;
    socket.on("away", () => socket.setPresence({ status: "away", note: "lunch" }));
    console.log(user, socket.presence?.status);
  });
  server.on("node_lost", (lost: LostSocket) => console.log(lost.node, lost.namespace, lost.sid, lost.userId ?? "-"));
  const port = await server.listen(0);
  const members: Member[] = await server.presence("lobby");
  const count: number = await server.of("/rooms").presenceCount("lobby");
  const online: boolean = await server.isOnline("alice");
  const many: Record<string, boolean> = await server.onlineUsers(["alice", "bob"]);
  const node: string | null = server.nodeId;
  const stats: ServerStats = server.stats();
  const errors: number = stats.clusterErrors + stats.clusterRequestTimeouts;
  console.log(members.map((m) => [m.userId, m.connections, m.meta.status, m.joinedAt]), count, online, many.bob, node, errors);
  const client = io(`http://127.0.0.1:${port}`, { auth: { userId: 7 } });
  client.on("presence:join", (m: PresenceEvent) => console.log(m.room, m.userId, m.anonymous === true));
  client.disconnect();
  await Promise.all([server.close(), other.close()]);
}

// Operations across the servers of a cluster.
async function cluster(): Promise<void> {
  const server = new Server({ redis: { url: "redis://127.0.0.1:6379", requestTimeout: 1000 } });
  server.on("whoami", (greeting: string, ack: (answer: { node: string | null }) => void) => {
    ack({ node: server.nodeId });
  });
  await server.listen(0);
  const found = await server.fetchSockets();
  const missing: string[] = found.missing;
  for (const s of found) {
    const rooms: Set<string> = s.rooms;
    if (s instanceof RemoteSocket) {
      const node: string = s.nodeId;
      const address: string = s.handshake.address;
      s.emit("hello", s.data, rooms.size, node, address);
      const left: ClusterCount = await s.leave("lobby");
      s.disconnect(true);
      console.log(left.count);
    } else {
      s.on("bye", () => s.disconnect());
    }
  }
  const joined: ClusterCount = await server.in("lobby").socketsJoin(["news"]);
  await server.local.socketsLeave("news");
  const gone: ClusterCount = await server.of("/admin").disconnectSockets(true);
  const rooms: PartialArray<string> = await server.allRooms();
  const count: ClusterCount = await server.of("/admin").socketsCount();
  const nodes: string[] = await server.nodes();
  server.serverSideEmit("note", "hi");
  server.serverSideEmit("whoami", "you?", (err: Error | null, replies: any[]) => console.log(err, replies));
  try {
    const answers = await server.serverSideEmitWithAck("whoami", "you?");
    console.log(answers.nodes[0], answers.missing);
    const votes = await server.timeout(1000).emitWithAck("vote");
    console.log(votes.missing);
  } catch (e) {
    const err = e as ServerSideTimeoutError | BroadcastTimeoutError;
    console.log(err.code, err.responses, err.missing, "nodes" in err ? err.nodes : []);
  }
  console.log(missing, joined.count, gone.missing, rooms.missing, count.count, nodes.length);
  await server.close();
}

void main();
void cluster();
void recovery();
void delivery();
