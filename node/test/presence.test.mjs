// Presence and clusters over Redis, against the real socket.io-client 4.8:
// one node, two nodes in this process on a redis-server the suite starts,
// a node in another process that is killed, redis-server killed and started
// again mid-traffic, and a 3-master Redis Cluster (sharded pub/sub).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { io as sioClient } from "socket.io-client";
import { startRedis, startRedisCluster } from "../test-fixtures/redis.mjs";
import {
  client,
  connect,
  clusterNodeProcess,
  exitsByItself,
  next,
  presenceApp,
  record,
  serve,
  sleep,
  until,
} from "../test-fixtures/helpers.mjs";

/** Two servers of the cluster `opts` serving the presence app, with presence in every room. */
async function presenceNodes(t, opts) {
  const nodes = [await serve(t, opts), await serve(t, opts)];
  for (const { io } of nodes) presenceApp(io.enablePresence());
  return nodes;
}

const byUser = (members) => [...members].sort((a, b) => a.userId.localeCompare(b.userId));

test("presence on one node: members per user, join/update/leave, isOnline, errors", { timeout: 20_000 }, async (t) => {
  const { io, url } = await serve(t);
  assert.equal(io.nodeId, null);
  io.enablePresence();
  presenceApp(io);
  const bob = await client(t, url, "bob");
  await bob.emitWithAck("enter", "lobby");
  const joins = record(bob, "presence:join");
  const alice1 = await client(t, url, "alice");
  await alice1.emitWithAck("enter", "lobby");
  const alice2 = await client(t, url, "alice");
  await alice2.emitWithAck("enter", "lobby");
  await until(() => joins.length > 0, "bob hears alice join");
  await bob.emitWithAck("enter", "lobby"); // a round trip after alice's second tab
  await sleep(100);
  assert.equal(joins.length, 1, "one join per user, none for a second tab");
  assert.deepEqual(
    { ...joins[0], joinedAt: 0, lastSeen: 0 },
    { room: "lobby", userId: "alice", connections: 1, meta: { status: "online" }, joinedAt: 0, lastSeen: 0 },
  );

  const members = byUser(await io.presence("lobby"));
  assert.deepEqual(
    members.map((m) => [m.userId, m.connections, m.meta.status]),
    [["alice", 2, "online"], ["bob", 1, "online"]],
  );
  assert.equal(typeof members[0].joinedAt, "number");
  assert.ok(members[0].lastSeen >= members[0].joinedAt && members[0].joinedAt > 1.6e12);
  assert.equal(await io.presenceCount("lobby"), 2);
  assert.equal(await io.of("/").presenceCount("elsewhere"), 0);

  // Metadata: the whole room (the socket that changed included) is told.
  const server2 = io.sockets.sockets.get(alice2.id);
  assert.equal(server2.userId, "alice");
  const updates = [next(bob, "presence:update"), next(alice1, "presence:update"), next(alice2, "presence:update")];
  server2.setPresence({ status: "away", note: "lunch" });
  for (const update of await Promise.all(updates)) {
    assert.equal(update.userId, "alice");
    assert.equal(update.room, "lobby");
    assert.deepEqual(update.meta, { status: "away", note: "lunch" });
  }
  assert.deepEqual(server2.presence, { status: "away", note: "lunch" });
  assert.deepEqual(io.sockets.sockets.get(bob.id).presence, { status: "online" });

  assert.equal(await io.isOnline("alice"), true);
  assert.equal(await io.isOnline("carol"), false);
  assert.deepEqual(await io.onlineUsers(["alice", "bob", "carol"]), { alice: true, bob: true, carol: false });

  // Errors carry the core's code.
  assert.throws(() => server2.setUserId("mallory"), { code: "ERR_INVALID_ARGUMENT" });
  assert.throws(() => server2.setPresence({ status: "asleep" }), { code: "ERR_INVALID_ARGUMENT" });
  assert.throws(() => server2.setPresence("away"), { code: "ERR_INVALID_ARGUMENT" });
  assert.equal(server2.userId, "alice");

  // The last of alice's tabs leaving makes her leave.
  const leaves = record(bob, "presence:leave");
  alice1.disconnect();
  await bob.emitWithAck("enter", "lobby");
  await sleep(100);
  assert.equal(leaves.length, 0, "a tab left, alice did not");
  alice2.disconnect();
  await until(() => leaves.length > 0, "bob hears alice leave");
  assert.equal(leaves[0].userId, "alice");
  assert.equal(leaves[0].room, "lobby");
  assert.deepEqual((await io.presence("lobby")).map((m) => m.userId), ["bob"]);
  assert.deepEqual(await io.onlineUsers(["alice", "bob"]), { alice: false, bob: true });
});

test("setUserId and presence only in rooms with presence, per namespace", { timeout: 20_000 }, async (t) => {
  const { io, url } = await serve(t);
  const chat = io.of("/chat").enablePresence("tracked");
  const refused = [];
  chat.use((socket, next) => {
    try {
      socket.setUserId(socket.handshake.auth.user);
      next();
    } catch (err) {
      refused.push(err.code);
      next(err);
    }
  });
  chat.on("connection", (socket) => socket.on("enter", (room, ack) => (socket.join(room), ack())));
  const a = await connect(t, `${url}/chat`, { auth: { user: "ann" } });
  await a.emitWithAck("enter", "tracked");
  await a.emitWithAck("enter", "untracked");
  assert.deepEqual((await chat.presence("tracked")).map((m) => m.userId), ["ann"]);
  assert.deepEqual(await chat.presence("untracked"), []);
  assert.deepEqual(await io.presence("tracked"), [], "namespaces are separate");

  // An empty user id is refused in the middleware: the client's connect_error.
  const nobody = sioClient(`${url}/chat`, { transports: ["websocket"], reconnection: false, auth: { user: "" } });
  t.after(() => nobody.close());
  assert.match((await next(nobody, "connect_error")).message, /user id/);
  assert.deepEqual(refused, ["ERR_INVALID_ARGUMENT"]);
});

describe("a cluster over Redis", () => {
  let redis;
  let prefixes = 0;
  /** Options of a node of a cluster of its own (one key prefix per test). */
  const cluster = (extra = {}) => ({ redis: { url: redis.url, prefix: `rc-node-${process.pid}-${++prefixes}`, ...extra } });

  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());

  test("two nodes: room broadcasts reach each client once, presence spans the nodes", { timeout: 30_000 }, async (t) => {
    const opts = cluster();
    const [a, b] = await presenceNodes(t, opts);
    assert.equal(typeof a.io.nodeId, "string");
    assert.notEqual(a.io.nodeId, b.io.nodeId);

    const bob = await client(t, b.url, "bob");
    await bob.emitWithAck("enter", "lobby");
    const joined = next(bob, "presence:join");
    const alice = await client(t, a.url, "alice");
    await alice.emitWithAck("enter", "lobby");
    const join = await joined;
    assert.equal(join.userId, "alice");
    assert.equal(join.connections, 1);
    const outsider = await client(t, b.url, "olga");

    const news = { alice: record(alice, "news"), bob: record(bob, "news"), olga: record(outsider, "news") };
    a.io.to("lobby").emit("news", "from a");
    b.io.to("lobby").emit("news", "from b");
    await until(() => news.alice.length >= 2 && news.bob.length >= 2, "both clients get both broadcasts");
    await sleep(300);
    assert.deepEqual(news.alice.sort(), ["from a", "from b"]);
    assert.deepEqual(news.bob.sort(), ["from a", "from b"]);
    assert.deepEqual(news.olga, []);

    for (const { io } of [a, b]) {
      assert.deepEqual(
        byUser(await io.presence("lobby")).map((m) => [m.userId, m.connections]),
        [["alice", 1], ["bob", 1]],
      );
      assert.equal(await io.presenceCount("lobby"), 2);
      assert.deepEqual(await io.onlineUsers(["alice", "bob", "olga", "carol"]), {
        alice: true,
        bob: true,
        olga: true,
        carol: false,
      });
    }
    assert.equal(await b.io.isOnline("alice"), true);

    const update = next(bob, "presence:update");
    a.io.sockets.sockets.get(alice.id).setPresence({ status: "busy" });
    assert.deepEqual((await update).meta, { status: "busy" });

    const left = next(bob, "presence:leave");
    alice.disconnect();
    assert.equal((await left).userId, "alice");
    assert.equal(await b.io.isOnline("alice"), false);
    assert.deepEqual((await b.io.presence("lobby")).map((m) => m.userId), ["bob"]);
  });

  test("a killed node: its members leave within the TTL, node_lost once per socket", { timeout: 30_000 }, async (t) => {
    const opts = cluster({ nodeTtl: 1000 });
    const { child, ...other } = await clusterNodeProcess(t, opts.redis);

    const { io, url } = await serve(t, opts);
    presenceApp(io.enablePresence());
    const lost = [];
    io.on("node_lost", (info) => lost.push(info));
    const bob = await client(t, url, "bob");
    await bob.emitWithAck("enter", "lobby");
    const joined = next(bob, "presence:join");
    const alice = await client(t, `http://127.0.0.1:${other.port}`, "alice");
    await alice.emitWithAck("enter", "lobby");
    assert.equal((await joined).userId, "alice");
    assert.equal(await io.isOnline("alice"), true);
    const aliceSid = alice.id;

    const left = next(bob, "presence:leave", 8000);
    child.kill("SIGKILL");
    const killed = Date.now();
    assert.equal((await left).userId, "alice");
    const elapsed = Date.now() - killed;
    assert.ok(elapsed < 4000, `alice left ${elapsed} ms after the kill`);
    await until(() => lost.length > 0, "node_lost is called");
    await sleep(300);
    assert.equal(lost.length, 1, "alice's socket, reported once");
    assert.deepEqual(lost[0], { node: other.nodeId, namespace: "/", sid: aliceSid, userId: "alice" });
    assert.equal(await io.isOnline("alice"), false);
    assert.deepEqual((await io.presence("lobby")).map((m) => m.userId), ["bob"]);
  });

  test("a process with a cluster node exits by itself once it is closed", { timeout: 20_000 }, async () => {
    const script = `
      const { Server } = require("roomcast");
      const { io } = require("roomcast/client");
      (async () => {
        const server = new Server({ redis: ${JSON.stringify(cluster().redis)} });
        server.enablePresence();
        server.on("connection", (s) => s.on("ping", (ack) => (s.join("room"), ack("pong"))));
        const port = await server.listen(0);
        const c = io("http://127.0.0.1:" + port, { reconnectionDelay: 50 });
        c.emit("ping", (r) => {
          console.log(r, typeof server.nodeId);
          c.disconnect();
          server.close();
        });
      })();`;
    const out = await exitsByItself(script);
    assert.equal(out.trim(), "pong string");
  });

  test("redis-server killed and restarted: local traffic goes on, the cluster recovers", { timeout: 40_000 }, async (t) => {
    // A Redis of this test's own: the others' stays up.
    const own = await startRedis();
    t.after(() => own.stop());
    const opts = { redis: { url: own.url } };
    const [a, b] = await presenceNodes(t, opts);
    const alice = await client(t, a.url, "alice");
    const bob = await client(t, b.url, "bob");
    await alice.emitWithAck("enter", "lobby");
    await bob.emitWithAck("enter", "lobby");
    const before = next(bob, "news");
    a.io.to("lobby").emit("news", "before");
    assert.equal(await before, "before");

    await own.kill();
    // Local joins and deliveries go on without Redis.
    const carol = await client(t, a.url, "carol");
    await carol.emitWithAck("enter", "lobby");
    const during = [next(alice, "news"), next(carol, "news")];
    a.io.to("lobby").emit("news", "during");
    assert.deepEqual(await Promise.all(during), ["during", "during"]);

    await own.restart();
    const crossed = record(bob, "news");
    await until(() => {
      a.io.to("lobby").emit("news", "after");
      return crossed.includes("after");
    }, "a broadcast crosses again", 20_000);
    // Presence is written again from each node's own state (Redis came back empty).
    await until(
      async () => byUser(await b.io.presence("lobby").catch(() => [])).map((m) => m.userId).join() === "alice,bob,carol",
      "presence re-established",
      10_000,
    );
    assert.equal(await b.io.isOnline("carol"), true);
    assert.ok(a.io.stats().clusterErrors > 0, "the outage is counted");
  });

  test("a 3-master Redis Cluster carries sharded broadcasts and presence", { timeout: 40_000 }, async (t) => {
    const shards = await startRedisCluster();
    t.after(() => shards.stop());
    const opts = { redis: { url: shards.url } };
    const [a, b] = await presenceNodes(t, opts);
    const ann = await client(t, a.url, "ann");
    const ben = await client(t, b.url, "ben");
    // Rooms whose channels hash to different slots, on different masters.
    const rooms = ["alpha", "bravo", "charlie", "delta"];
    for (const room of rooms) {
      await ann.emitWithAck("enter", room);
      await ben.emitWithAck("enter", room);
    }
    const got = record(ben, "shard");
    rooms.forEach((room, i) => a.io.to(room).emit("shard", i));
    await until(() => got.length >= rooms.length, "every room's broadcast crossed");
    await sleep(300);
    assert.deepEqual(got.sort(), [0, 1, 2, 3], "once each");
    assert.deepEqual(byUser(await b.io.presence("charlie")).map((m) => m.userId), ["ann", "ben"]);
    assert.equal(await a.io.isOnline("ben"), true);
    assert.equal(a.io.stats().clusterErrors, 0);
  });
});
