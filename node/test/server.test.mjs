// The socket.io-shaped server against the real socket.io-client 4.8, a
// JSON-protocol WebSocket client and roomcast's own client.
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { Manager, io as sioClient } from "socket.io-client";
import WebSocket from "ws";
import { Server } from "roomcast";
import { io as rcClient } from "roomcast/client";
import { connect, exitsByItself, next, serve, until } from "../test-fixtures/helpers.mjs";

test("connection, handshake, events and acks both ways, binary, catch-all", async (t) => {
  const { io, url } = await serve(t);
  const seen = [];
  io.on("connection", (socket) => {
    seen.push(socket);
    socket.onAny((event) => socket.data.events = [...(socket.data.events ?? []), event]);
    socket.on("echo", (...args) => args.pop()(...args));
    socket.on("double", (buf, ack) => ack(Buffer.concat([buf, buf]), buf.length));
    socket.on("no-ack", (value) => socket.emit("got", value));
  });
  const c = await connect(t, url, { auth: { token: "t", at: 1_795_000_000_000 }, query: { room: "a b" }, extraHeaders: { "x-app": "tests" } });
  const [socket] = seen;
  assert.equal(socket.id, c.id);
  assert.deepEqual(socket.handshake.auth, { token: "t", at: 1_795_000_000_000 });
  assert.equal(socket.handshake.query.room, "a b");
  assert.equal(socket.handshake.address, "127.0.0.1");
  assert.deepEqual([...socket.rooms], [socket.id]);

  assert.deepEqual(await c.emitWithAck("echo", 1, { a: [null, "x"] }), 1);
  // Integers beyond 32 bits (timestamps) arrive as numbers, not BigInts.
  assert.equal(await c.emitWithAck("echo", 1_795_000_000_000, -1_795_000_000_000), 1_795_000_000_000);
  assert.deepEqual(await new Promise((r) => c.emit("echo", "a", 2, (...args) => r(args))), ["a", 2]);
  const [doubled, length] = await new Promise((r) => c.emit("double", Buffer.from([1, 2]), (...args) => r(args)));
  assert.deepEqual([...new Uint8Array(doubled)], [1, 2, 1, 2]);
  assert.equal(length, 2);
  c.emit("no-ack", { fire: "forget" });
  assert.deepEqual(await next(c, "got"), { fire: "forget" });
  assert.deepEqual(socket.data.events, ["echo", "echo", "echo", "double", "no-ack"]);

  // Server → client: callback, emitWithAck, and a timeout when it never answers.
  c.on("ask", (n, bin, ack) => ack(n + 1, Buffer.from(bin).reverse()));
  const [plus, reversed] = await new Promise((r) => socket.emit("ask", 41, Buffer.from([1, 2, 3]), (...a) => r(a)));
  assert.equal(plus, 42);
  assert.deepEqual([...reversed], [3, 2, 1]);
  assert.equal(await socket.timeout(2000).emitWithAck("ask", 1, Buffer.alloc(0)), 2);
  c.on("silent", () => {});
  await assert.rejects(socket.timeout(50).emitWithAck("silent"), { code: "ERR_TIMEOUT" });
  const err = await new Promise((r) => socket.timeout(50).emit("silent", (e) => r(e)));
  assert.equal(err.code, "ERR_TIMEOUT");
});

test("rooms: join, leave, to, except, broadcast, fetchSockets, socketsJoin, disconnectSockets", async (t) => {
  const { io, url } = await serve(t);
  const sockets = new Map();
  io.on("connection", (socket) => {
    sockets.set(socket.id, socket);
    socket.on("join", (room, ack) => {
      socket.join(room);
      ack([...socket.rooms]);
    });
    socket.on("shout", (room, text) => socket.to(room).emit("said", text));
    socket.on("all-but-me", (text) => socket.broadcast.emit("said", text));
  });
  const [a, b, c] = [await connect(t, url), await connect(t, url), await connect(t, url)];
  assert.deepEqual(await a.emitWithAck("join", "blue"), [a.id, "blue"]);
  await b.emitWithAck("join", "blue");
  await c.emitWithAck("join", "red");

  const heard = (s) => new Promise((r) => s.once("said", r));
  a.emit("shout", "blue", "hi blue");
  assert.equal(await heard(b), "hi blue");
  c.emit("all-but-me", "from c");
  assert.deepEqual(await Promise.all([heard(a), heard(b)]), ["from c", "from c"]);

  io.to("blue").except(b.id).emit("said", "blue but b");
  assert.equal(await heard(a), "blue but b");
  io.in(["blue", "red"]).except("red").emit("said", "blue only");
  assert.deepEqual(await Promise.all([heard(a), heard(b)]), ["blue only", "blue only"]);
  io.emit("said", "everyone");
  assert.deepEqual(await Promise.all([heard(a), heard(b), heard(c)]), ["everyone", "everyone", "everyone"]);

  const blue = await io.in("blue").fetchSockets();
  assert.deepEqual(blue.map((s) => s.id).sort(), [a.id, b.id].sort());
  assert.ok(blue.every((s) => sockets.get(s.id) === s));
  io.in("red").socketsJoin(["blue", "green"]);
  assert.deepEqual([...sockets.get(c.id).rooms].sort(), [c.id, "blue", "green", "red"].sort());
  io.socketsLeave("blue");
  assert.deepEqual((await io.in("blue").fetchSockets()).length, 0);
  sockets.get(a.id).leave("green");

  const gone = next(c, "disconnect");
  io.in("green").disconnectSockets();
  assert.equal(await gone, "io server disconnect");
  assert.deepEqual((await io.fetchSockets()).map((s) => s.id).sort(), [a.id, b.id].sort());
});

test("broadcast acks collect every reply, or reject with those that came", async (t) => {
  const { io, url } = await serve(t);
  const a = await connect(t, url);
  const b = await connect(t, url);
  a.on("vote", (ack) => ack("a"));
  b.on("vote", (ack) => ack("b"));
  assert.deepEqual((await io.timeout(2000).emitWithAck("vote")).sort(), ["a", "b"]);
  const [err, responses] = await new Promise((r) => io.timeout(2000).emit("vote", (e, res) => r([e, res])));
  assert.equal(err, null);
  assert.deepEqual(responses.sort(), ["a", "b"]);
  b.off("vote");
  b.on("vote", () => {});
  const failed = await io.timeout(100).emitWithAck("vote").catch((e) => e);
  assert.equal(failed.code, "ERR_TIMEOUT");
  assert.deepEqual(failed.responses, ["a"]);
  await assert.rejects(io.emitWithAck("vote"), /timeout/);
});

test("middlewares refuse with message and data; namespaces are separate", async (t) => {
  const { io, url } = await serve(t);
  io.use((socket, next) => (socket.handshake.auth.token === "ok" ? next() : next(Object.assign(new Error("who are you?"), { data: { retry: false } }))));
  const admin = io.of("/admin");
  admin.use(async (socket, next) => {
    await new Promise((r) => setTimeout(r, 5));
    socket.data.role = "admin";
    next();
  });
  const roles = [];
  admin.on("connection", (socket) => {
    roles.push(socket.data.role);
    socket.on("where", (ack) => ack(socket.nsp.name));
  });
  io.on("connection", (socket) => socket.on("where", (ack) => ack(socket.nsp.name)));

  const refused = sioClient(url, { transports: ["websocket"], reconnection: false, auth: { token: "bad" } });
  t.after(() => refused.close());
  const e = await next(refused, "connect_error");
  assert.equal(e.message, "who are you?");
  assert.deepEqual(e.data, { retry: false });

  const root = await connect(t, url, { auth: { token: "ok" } });
  const adm = await connect(t, `${url}/admin`);
  assert.equal(await root.emitWithAck("where"), "/");
  assert.equal(await adm.emitWithAck("where"), "/admin");
  assert.deepEqual(roles, ["admin"]);
  const hellos = Promise.all([next(root, "hello"), next(adm, "hello")]);
  io.emit("hello", "root only");
  admin.emit("hello", "admin only");
  assert.deepEqual(await hellos, ["root only", "admin only"]);

  const unknown = sioClient(`${url}/nowhere`, { transports: ["websocket"], reconnection: false });
  t.after(() => unknown.close());
  assert.equal((await next(unknown, "connect_error")).message, "Invalid namespace");
});

test("disconnect reasons both ways; a throwing handler is reported and the connection goes on", async (t) => {
  const { io, url } = await serve(t);
  const reasons = [];
  let roomsWhileLeaving;
  io.on("connection", (socket) => {
    socket.join("r");
    socket.on("boom", () => {
      throw new Error("handler bug (expected by the test)");
    });
    socket.on("async-boom", async () => {
      throw new Error("async handler bug (expected by the test)");
    });
    socket.on("ok", (ack) => ack("still here"));
    socket.on("kick", () => socket.disconnect());
    socket.on("disconnecting", () => (roomsWhileLeaving = [...socket.rooms]));
    socket.on("disconnect", (reason) => reasons.push(reason));
  });
  const errors = [];
  const original = console.error;
  console.error = (...args) => errors.push(args.join(" "));
  t.after(() => (console.error = original));
  const c = await connect(t, url);
  c.emit("boom");
  c.emit("async-boom");
  assert.equal(await c.emitWithAck("ok"), "still here");
  assert.equal(errors.length, 2);
  assert.match(errors[0], /boom handler .* failed/);

  c.emit("kick");
  assert.equal(await next(c, "disconnect"), "io server disconnect");
  const d = await connect(t, url);
  const left = new Promise((r) => io.sockets.sockets.get(d.id).on("disconnect", r));
  d.disconnect();
  assert.equal(await left, "client namespace disconnect");
  assert.deepEqual(reasons, ["server namespace disconnect", "client namespace disconnect"]);

  // disconnect(true): every namespace of the connection (socket.io-client
  // multiplexes "/" and "/admin" over one), then the connection closes.
  io.of("/admin").on("connection", (s) => s.on("leave-all", () => s.disconnect(true)));
  const manager = new Manager(url, { transports: ["websocket"], reconnection: false });
  const [root, admin] = [manager.socket("/"), manager.socket("/admin")];
  t.after(() => (root.close(), admin.close()));
  await Promise.all([once(root, "connect"), once(admin, "connect")]);
  const both = Promise.all([next(root, "disconnect"), next(admin, "disconnect")]);
  admin.emit("leave-all");
  assert.deepEqual(await both, ["io server disconnect", "io server disconnect"]);
  assert.ok(roomsWhileLeaving.includes("r"), "rooms are readable while disconnecting");
  // Gone sockets are forgotten; emitting to one is ERR_NOT_FOUND.
  await until(() => io.sockets.sockets.size === 0, "every socket forgotten");
  assert.throws(() => io._native.emit("/", "gone", "x", []), { code: "ERR_NOT_FOUND" });
});

test("JSON-protocol WebSocket clients share the rooms and events", async (t) => {
  const { io, port, url } = await serve(t);
  io.on("connection", (socket) => {
    socket.on("add", (data, ack) => ack(data.a + data.b));
    socket.on("enter", (room) => socket.join(room));
  });
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  t.after(() => ws.close());
  const messages = [];
  const waiters = [];
  ws.on("message", (raw) => {
    messages.push(JSON.parse(raw));
    waiters.splice(0).forEach((w) => w());
  });
  const message = async (pred) => {
    for (;;) {
      const i = messages.findIndex(pred);
      if (i >= 0) return messages.splice(i, 1)[0];
      await new Promise((r) => waiters.push(r));
    }
  };
  await message((m) => m.type === "connected");
  ws.send(JSON.stringify({ type: "event", event: "add", data: { a: 2, b: 3 }, id: 7 }));
  assert.deepEqual(await message((m) => m.type === "ack"), { type: "ack", id: 7, data: 5 });
  ws.send(JSON.stringify({ type: "event", event: "enter", data: "mixed" }));
  const sio = await connect(t, url);
  await new Promise((r) => setTimeout(r, 50));
  io.to("mixed").emit("news", { n: 1 });
  const news = await message((m) => m.type === "event");
  assert.equal(news.event, "news");
  assert.deepEqual(news.data, { n: 1 });
  assert.equal((await io.in("mixed").fetchSockets()).length, 1);
  assert.ok(sio.connected);
});

test("roomcast's client: events, acks both ways, refusal, reconnection after a restart", async (t) => {
  const { io, url, port } = await serve(t);
  io.use((socket, next) => (socket.handshake.auth.name ? next() : next(new Error("name required"))));
  const onServer = (server) =>
    server.on("connection", (socket) => {
      socket.on("hello", (name, ack) => ack(`hi ${name}`, socket.handshake.auth.name));
      socket.emit("welcome", Buffer.from("bin"));
    });
  onServer(io);

  const refused = rcClient(url, { reconnection: false });
  t.after(() => refused.close());
  assert.equal((await next(refused, "connect_error")).message, "name required");

  const c = rcClient(url, { auth: { name: "ada" }, reconnectionDelay: 50, reconnectionDelayMax: 100 });
  t.after(() => c.close());
  const welcome = next(c, "welcome");
  await next(c, "connect");
  assert.ok(c.connected && c.id);
  assert.deepEqual([...(await welcome)], [...Buffer.from("bin")]);
  assert.equal(await c.emitWithAck("hello", "you"), "hi you");
  const both = await new Promise((r) => c.timeout(2000).emit("hello", "cb", (err, ...args) => r([err, ...args])));
  assert.deepEqual(both, [null, "hi cb", "ada"]);
  await assert.rejects(c.timeout(50).emitWithAck("nobody-listens"), { code: "ERR_TIMEOUT" });

  c.on("question", (a, b, ack) => ack(a * b));
  const [socket] = await io.fetchSockets();
  assert.equal(await socket.timeout(2000).emitWithAck("question", 6, 7), 42);

  // Close and reopen on the same port: the client reconnects by itself.
  const lost = next(c, "disconnect");
  await io.close();
  assert.equal(await lost, "transport close");
  const again = new Server();
  t.after(() => again.close());
  again.use((s, n) => n());
  onServer(again);
  const buffered = c.emitWithAck("hello", "while down"); // kept until reconnected
  const back = next(c, "connect");
  await again.listen(port);
  await back;
  assert.equal(await buffered, "hi while down");
  assert.equal(await c.emitWithAck("hello", "again"), "hi again");
});

test("a process exits by itself once its server and clients are closed", { timeout: 20_000 }, async () => {
  const script = `
    const { Server } = require("roomcast");
    const { io } = require("roomcast/client");
    (async () => {
      const server = new Server();
      server.on("connection", (s) => s.on("ping", (ack) => ack("pong")));
      const port = await server.listen(0);
      const c = io("http://127.0.0.1:" + port, { reconnectionDelay: 50 });
      c.emit("ping", (r) => {
        console.log(r);
        c.disconnect();
        server.close();
      });
    })();`;
  const out = await exitsByItself(script);
  assert.equal(out.trim(), "pong");
});

test("the client buffers emits until it is connected, and reports codes", async (t) => {
  const { io, url } = await serve(t);
  const got = [];
  io.on("connection", (socket) => socket.on("note", (n) => got.push(n)));
  // Emits made while connecting are sent once connected; before connect()
  // (autoConnect: false) they are refused rather than kept indefinitely.
  const idle = rcClient(url, { autoConnect: false });
  assert.throws(() => idle.emit("note", 0), { code: "ERR_CLOSED" });
  const c = rcClient(url);
  t.after(() => c.close());
  c.emit("note", 1);
  c.emit("note", 2);
  assert.equal(c.connected, false);
  await next(c, "connect");
  await assert.rejects(c.timeout(50).emitWithAck("nobody"), { code: "ERR_TIMEOUT" }, "unhandled events are not acked");
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(got, [1, 2]);
  assert.throws(() => rcClient(url, { transports: ["polling"] }), { code: "ERR_INVALID_ARGUMENT" });
  assert.throws(() => rcClient("not a url"), (e) => typeof e.code === "string" && e.code.startsWith("ERR_"));
});

test("connection limits: a client over the per-IP rate is refused with 429, the admitted go on", async (t) => {
  const { io, url, port } = await serve(t, { connectionRatePerIp: 0.01, connectionBurstPerIp: 2, maxConnectionsPerIp: 5 });
  io.on("connection", (socket) => socket.on("echo", (v, ack) => ack(v)));
  const a = await connect(t, url);
  const b = await connect(t, url);
  const res = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`);
  assert.equal(res.status, 429);
  assert.match((await res.json()).message, /too many new connections/);
  const refused = sioClient(url, { transports: ["websocket"], reconnection: false });
  t.after(() => refused.close());
  await once(refused, "connect_error");
  assert.equal(io.stats().refusedConnections, 2);
  assert.equal(await a.emitWithAck("echo", 1), 1);
  assert.equal(await b.emitWithAck("echo", 2), 2);
  assert.throws(() => new Server({ connectionRatePerIp: -1 }), { code: "ERR_CONFIG" });
});
