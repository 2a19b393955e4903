// socket.io's operations that span the servers of a cluster, against the
// real socket.io-client 4.8: fetchSockets, socketsJoin / socketsLeave /
// disconnectSockets, broadcasts with acks, serverSideEmit, rooms and
// counts; two nodes in this process on a redis-server the suite starts,
// and a third in a child process, frozen with SIGSTOP (a partial answer).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { RemoteSocket, Socket } from "roomcast";
import { startRedis } from "../test-fixtures/redis.mjs";
import { client, clusterNodeProcess, next, record, serve, sleep, until } from "../test-fixtures/helpers.mjs";

/** Sockets keep their user in `data` (nested, changed in place); "enter" joins a room. */
function app(io) {
  io.on("connection", (socket) => {
    socket.data.user = { name: socket.handshake.auth.user, tags: [] };
    socket.data.user.tags.push("new");
    socket.on("enter", (room, ack) => {
      socket.join(room);
      ack();
    });
  });
  return io;
}

const ids = (sockets) => sockets.map((s) => s.id).sort();

/** Nodes `a` and `b` of the cluster `opts` serving the app, alice connected to
 *  a and bob to b: the start of each test with two nodes in this process. */
async function aliceAndBob(t, opts) {
  const a = await serve(t, opts);
  const b = await serve(t, opts);
  app(a.io);
  app(b.io);
  const alice = await client(t, a.url, "alice");
  const bob = await client(t, b.url, "bob");
  return { a, b, alice, bob };
}

test("without Redis: the cluster operations act on this server, complete", { timeout: 20_000 }, async (t) => {
  const { io, url } = await serve(t);
  app(io);
  const ann = await client(t, url, "ann");
  await ann.emitWithAck("enter", "lobby");
  ann.on("vote", (ack) => ack("yes"));
  const found = await io.fetchSockets();
  assert.ok(found[0] instanceof Socket);
  assert.deepEqual(found.missing, []);
  assert.deepEqual(found[0].data, { user: { name: "ann", tags: ["new"] } });
  assert.deepEqual(await io.nodes(), []);
  assert.deepEqual(await io.allRooms(), ["lobby"]);
  assert.deepEqual(await io.socketsCount(), { count: 1, missing: [] });
  const stats = io.stats();
  assert.deepEqual([stats.sockets, stats.rooms, stats.clusterMessagesOut, stats.clusterErrors], [1, 1, 0, 0]);
  assert.ok(stats.messagesIn >= 1 && stats.bytesOut > 0, JSON.stringify(stats));
  const answers = await io.serverSideEmitWithAck("anyone");
  assert.deepEqual([answers, answers.missing, answers.nodes], [[], [], []]);
  assert.throws(() => io.serverSideEmit("connection"), /reserved/);

  // This server's part is done when the call returns, as before.
  const joined = io.in("lobby").socketsJoin(["news", "sports"]);
  assert.deepEqual([...found[0].rooms].sort(), [ann.id, "lobby", "news", "sports"].sort());
  assert.deepEqual(await joined, { count: 1, missing: [] });
  assert.deepEqual(await io.local.socketsLeave("sports"), { count: 1, missing: [] });
  assert.deepEqual(await io.timeout(2000).emitWithAck("vote"), ["yes"]);
  assert.deepEqual(await io.local.timeout(2000).emitWithAck("vote"), ["yes"]);
  const heard = next(ann, "local");
  io.local.to("news").emit("local", "only here");
  assert.equal(await heard, "only here");
  const gone = next(ann, "disconnect");
  assert.deepEqual(await io.disconnectSockets(), { count: 1, missing: [] });
  assert.equal(await gone, "io server disconnect");
});

describe("cluster-wide operations over Redis", () => {
  let redis;
  let prefixes = 0;
  /** Options of a node of a cluster of its own (one key prefix per test). */
  const cluster = (extra = {}) => ({
    redis: { url: redis.url, prefix: `rc-cluster-${process.pid}-${++prefixes}`, ...extra },
  });

  before(async () => {
    redis = await startRedis();
  });
  after(() => redis?.stop());

  const twoNodes = "two nodes: fetchSockets, socketsJoin/Leave, disconnectSockets, acks, serverSideEmit";
  test(twoNodes, { timeout: 40_000 }, async (t) => {
    const opts = cluster({ requestTimeout: 2000 });
    const { a, b, alice, bob } = await aliceAndBob(t, opts);
    await alice.emitWithAck("enter", "lobby");
    await bob.emitWithAck("enter", "lobby");
    assert.deepEqual(await a.io.nodes(), [a.io.nodeId, b.io.nodeId].sort());

    // fetchSockets: this node's Socket, the other's RemoteSocket with its details.
    const found = await a.io.fetchSockets();
    assert.deepEqual(found.missing, []);
    assert.deepEqual(ids(found), [alice.id, bob.id].sort());
    const local = found.find((s) => s.id === alice.id);
    assert.equal(local, a.io.sockets.sockets.get(alice.id));
    const remote = found.find((s) => s.id === bob.id);
    assert.ok(remote instanceof RemoteSocket);
    assert.equal(remote.nodeId, b.io.nodeId);
    assert.deepEqual(remote.handshake.auth, { user: "bob" });
    assert.equal(remote.handshake.address, "127.0.0.1");
    assert.match(remote.handshake.url, /^\/socket\.io\/\?/);
    assert.equal(typeof remote.handshake.headers, "object");
    assert.deepEqual(remote.rooms, new Set([bob.id, "lobby"]));
    assert.deepEqual(remote.data, { user: { name: "bob", tags: ["new"] } });
    assert.deepEqual(ids(await b.io.in("lobby").fetchSockets()), [alice.id, bob.id].sort());
    assert.deepEqual(await a.io.in("nowhere").fetchSockets(), []);
    assert.deepEqual(ids(await a.io.local.fetchSockets()), [alice.id]);
    assert.deepEqual(await a.io.allRooms(), ["lobby"]);
    assert.deepEqual(await a.io.socketsCount(), { count: 2, missing: [] });

    // Data changed later (in place, or replaced) reaches the other node.
    b.io.sockets.sockets.get(bob.id).data.user.tags.push("vip");
    await until(
      async () => (await a.io.in(bob.id).fetchSockets())[0]?.data.user.tags.includes("vip"),
      "bob's new tag is seen from a",
    );
    b.io.sockets.sockets.get(bob.id).data = { replaced: Buffer.from("hi") };
    await until(async () => (await a.io.in(bob.id).fetchSockets())[0]?.data.replaced, "bob's new data is seen");
    assert.deepEqual((await a.io.in(bob.id).fetchSockets())[0].data, { replaced: Buffer.from("hi") });

    // socketsJoin then a broadcast to the new room reaches both nodes' clients.
    assert.deepEqual(await a.io.in("lobby").socketsJoin("news"), { count: 2, missing: [] });
    assert.ok(b.io.sockets.sockets.get(bob.id).rooms.has("news"));
    const headlines = [next(alice, "headline"), next(bob, "headline")];
    a.io.to("news").emit("headline", "extra");
    assert.deepEqual(await Promise.all(headlines), ["extra", "extra"]);
    assert.deepEqual(await b.io.socketsLeave("news"), { count: 2, missing: [] });
    assert.equal(a.io.sockets.sockets.get(alice.id).rooms.has("news"), false);
    assert.deepEqual(await a.io.allRooms(), ["lobby"]);

    // A remote socket: emit through its node, join and leave.
    const direct = next(bob, "direct");
    remote.emit("direct", { to: "bob" });
    assert.deepEqual(await direct, { to: "bob" });
    assert.deepEqual(await remote.join("vip"), { count: 1, missing: [] });
    assert.deepEqual([...b.io.sockets.sockets.get(bob.id).rooms].sort(), [bob.id, "lobby", "vip"].sort());
    await remote.leave("vip");
    assert.equal(b.io.sockets.sockets.get(bob.id).rooms.has("vip"), false);

    // Broadcast acks are collected on both nodes.
    alice.on("vote", (ack) => ack("a"));
    bob.on("vote", (ack) => ack("b"));
    const votes = await a.io.timeout(2000).emitWithAck("vote");
    assert.deepEqual([...votes].sort(), ["a", "b"]);
    assert.deepEqual(votes.missing, []);
    const [err, responses] = await new Promise((r) => b.io.timeout(2000).emit("vote", (e, res) => r([e, res])));
    assert.equal(err, null);
    assert.deepEqual(responses.sort(), ["a", "b"]);
    assert.deepEqual(await a.io.local.timeout(2000).emitWithAck("vote"), ["a"]);
    assert.deepEqual(await remote.timeout(2000).emitWithAck("vote"), ["b"]);
    bob.off("vote");
    bob.on("vote", () => {});
    const silent = await a.io.timeout(200).emitWithAck("vote").catch((e) => e);
    assert.equal(silent.code, "ERR_TIMEOUT");
    assert.deepEqual(silent.responses, ["a"]);
    assert.deepEqual(silent.missing, []);

    // Server-side events: the other node's listeners, with an ack; not the sender's own.
    const heardOnA = [];
    a.io.on("whoami", (...args) => heardOnA.push(args));
    b.io.on("whoami", (greeting, blob, ack) => ack({ node: b.io.nodeId, greeting, size: blob.length }));
    const answers = await a.io.serverSideEmitWithAck("whoami", "hi", Buffer.alloc(3));
    assert.deepEqual(answers, [{ node: b.io.nodeId, greeting: "hi", size: 3 }]);
    assert.deepEqual([answers.nodes, answers.missing], [[b.io.nodeId], []]);
    const viaCallback = await new Promise((r) => a.io.serverSideEmit("whoami", "cb", [], (e, res) => r([e, res])));
    assert.deepEqual(viaCallback, [null, [{ node: b.io.nodeId, greeting: "cb", size: 0 }]]);
    const notes = [];
    a.io.on("note", (text) => notes.push(text));
    b.io.once("note", (text) => notes.push(`b: ${text}`));
    assert.equal(b.io.serverSideEmit("note", "from b"), true);
    a.io.serverSideEmit("note", "from a");
    await until(() => notes.length >= 2, "each node hears the other's note");
    await sleep(100);
    assert.deepEqual(notes.sort(), ["b: from a", "from b"]);
    assert.deepEqual(heardOnA, []);

    // disconnectSockets reaches a socket of the other node.
    const gone = next(bob, "disconnect");
    remote.disconnect();
    assert.equal(await gone, "io server disconnect");
    assert.deepEqual(ids(await a.io.fetchSockets()), [alice.id]);
    const goneToo = next(alice, "disconnect");
    assert.deepEqual(await b.io.in("lobby").disconnectSockets(true), { count: 1, missing: [] });
    assert.equal(await goneToo, "io server disconnect");
    assert.deepEqual(await b.io.socketsCount(), { count: 0, missing: [] });
  });

  test("a node receives a room's broadcasts only while it hosts a member", { timeout: 30_000 }, async (t) => {
    const { a, b, alice, bob } = await aliceAndBob(t, cluster());
    await alice.emitWithAck("enter", "quiet");
    await sleep(200); // the join notices have gone through
    const before = b.io.stats().clusterMessagesIn;
    const got = record(alice, "tick");
    for (let i = 0; i < 20; i++) a.io.to("quiet").emit("tick", i);
    await until(() => got.length === 20, "alice gets every tick");
    await sleep(300);
    assert.equal(b.io.stats().clusterMessagesIn, before, "b hosts no member of the room: none of its traffic");

    await bob.emitWithAck("enter", "quiet"); // b subscribes before the join is answered
    const joined = b.io.stats().clusterMessagesIn;
    const now = next(bob, "tick");
    a.io.to("quiet").emit("tick", "now");
    assert.equal(await now, "now");
    assert.equal(b.io.stats().clusterMessagesIn, joined + 1);
    assert.ok(a.io.stats().clusterMessagesOut >= 21);
  });

  test("a frozen node: answers are partial within the request timeout and name it", { timeout: 40_000 }, async (t) => {
    const opts = cluster({ requestTimeout: 1000 });
    // Its TTL is long: frozen, it is still a member the others wait for.
    const { child, ...third } = await clusterNodeProcess(t, opts.redis, 30_000);

    const { a, b, alice, bob } = await aliceAndBob(t, opts);
    const carol = await client(t, `http://127.0.0.1:${third.port}`, "carol");
    alice.on("vote", (ack) => ack("a"));
    bob.on("vote", (ack) => ack("b"));
    b.io.on("ping", (ack) => ack("pong"));
    const everyone = [alice.id, bob.id, carol.id].sort();
    assert.deepEqual(await a.io.nodes(), [a.io.nodeId, b.io.nodeId, third.nodeId].sort());
    const all = await a.io.fetchSockets();
    assert.deepEqual([ids(all), all.missing], [everyone, []]);
    assert.equal(all.find((s) => s.id === carol.id).nodeId, third.nodeId);

    child.kill("SIGSTOP");
    let started = Date.now();
    const partial = await a.io.fetchSockets();
    let elapsed = Date.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 3000, `answered after ${elapsed} ms`);
    assert.deepEqual(ids(partial), [alice.id, bob.id].sort());
    assert.deepEqual(partial.missing, [third.nodeId]);

    assert.deepEqual(await b.io.socketsCount(), { count: 2, missing: [third.nodeId] });
    assert.deepEqual(await a.io.socketsJoin("later"), { count: 2, missing: [third.nodeId] });
    const rooms = await a.io.allRooms();
    assert.deepEqual([rooms, rooms.missing], [["later"], [third.nodeId]]);

    started = Date.now();
    const votes = await a.io.timeout(300).emitWithAck("vote").catch((e) => e);
    elapsed = Date.now() - started;
    assert.ok(elapsed < 4000, `acks answered after ${elapsed} ms`);
    assert.equal(votes.code, "ERR_TIMEOUT");
    assert.deepEqual([votes.responses.sort(), votes.missing], [["a", "b"], [third.nodeId]]);

    const pong = await a.io.serverSideEmitWithAck("ping").catch((e) => e);
    assert.equal(pong.code, "ERR_TIMEOUT");
    assert.deepEqual([pong.responses, pong.nodes, pong.missing], [["pong"], [b.io.nodeId], [third.nodeId]]);

    // Thawed, it answers again.
    child.kill("SIGCONT");
    await until(async () => (await a.io.fetchSockets()).missing.length === 0, "the thawed node answers", 10_000);
    assert.deepEqual(ids(await b.io.fetchSockets()), everyone);
    child.kill("SIGKILL");
    await once(child, "exit");
  });
});
