// socket.io-client 4.x against a roomcast server (URL in ROOMCAST_URL).
// Run by core/tests/interop.rs, which hosts the server and its handlers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";

const URL = process.env.ROOMCAST_URL;
const TRANSPORTS = (process.env.ROOMCAST_TRANSPORTS || "polling,websocket").split(",");
const opts = (extra = {}) => ({ transports: TRANSPORTS, reconnectionDelay: 100, reconnectionDelayMax: 300, timeout: 5000, ...extra });

const once = (socket, event) => new Promise((resolve) => socket.once(event, (...args) => resolve(args)));

async function connected(nsp = "/", extra = {}) {
  const socket = io(URL + nsp, opts(extra));
  await once(socket, "connect");
  return socket;
}

test("connects, gets a welcome and a sid", async () => {
  const socket = io(URL, opts());
  const [welcome] = await once(socket, "welcome");
  assert.equal(welcome.id, socket.id);
  assert.ok(socket.connected);
  socket.disconnect();
});

test("ends on the best transport allowed, upgrading from polling when both are", async () => {
  const socket = await connected();
  const expected = TRANSPORTS.includes("websocket") ? "websocket" : "polling";
  if (socket.io.engine.transport.name !== expected) await once(socket.io.engine, "upgrade");
  assert.equal(socket.io.engine.transport.name, expected);
  assert.equal(await socket.timeout(2000).emitWithAck("echo", `over ${expected}`), `over ${expected}`);
  socket.disconnect();
});

const ackArgs = (socket, ...args) =>
  new Promise((resolve, reject) => socket.timeout(2000).emit(...args, (err, ...reply) => (err ? reject(err) : resolve(reply))));

test("events and acks with several arguments", async () => {
  const socket = await connected();
  assert.deepEqual(await ackArgs(socket, "echo", 1, "two", { three: [3] }), [1, "two", { three: [3] }]);
  assert.equal(await socket.timeout(2000).emitWithAck("echo", "first only"), "first only");
  socket.disconnect();
});

test("server-to-client ack round trip, and client ack timeout", async () => {
  const socket = await connected();
  socket.on("question", (q, ack) => ack(`answer to ${q}`));
  assert.equal(await socket.timeout(2000).emitWithAck("ask", "life"), "answer to life");
  // The server waits 200 ms for an ack that never comes.
  socket.off("question");
  socket.on("question", () => {});
  assert.equal(await socket.timeout(2000).emitWithAck("ask", "void"), "timeout");
  // The client's own timeout when the server never acks.
  await assert.rejects(socket.timeout(100).emitWithAck("never_acks"), /timed out/);
  socket.disconnect();
});

test("binary both ways", async () => {
  const socket = await connected();
  const blob = Buffer.from([0, 1, 2, 250, 255]);
  const [back, meta] = await ackArgs(socket, "binary", blob, { name: "f.bin", nested: [Buffer.from("x")] });
  assert.deepEqual([...Buffer.from(back)], [0, 1, 2, 250, 255]);
  assert.equal(meta.name, "f.bin");
  assert.equal(Buffer.from(meta.nested[0]).toString(), "x");
  const [pushed] = await Promise.all([once(socket, "blob").then((a) => a[0]), socket.emit("send_blob")]);
  assert.deepEqual([...Buffer.from(pushed)], [1, 2, 3]);
  socket.disconnect();
});

test("rooms: broadcast to a room reaches members only", async () => {
  const [a, b, c] = await Promise.all([connected(), connected(), connected()]);
  await a.timeout(2000).emitWithAck("join", "r1");
  await b.timeout(2000).emitWithAck("join", "r1");
  const got = [];
  c.on("room_msg", () => got.push("c"));
  const [bGot] = await Promise.all([once(b, "room_msg"), a.timeout(2000).emitWithAck("to_room", "r1", { hi: 1 })]);
  assert.deepEqual(bGot, [{ hi: 1 }]);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(got, []);
  for (const s of [a, b, c]) s.disconnect();
});

test("namespaces and connect_error with the middleware's message and data", async () => {
  const admin = await connected("/admin", { auth: { token: "secret" } });
  assert.equal(await admin.timeout(2000).emitWithAck("whoami"), "/admin");
  admin.disconnect();
  const refused = io(URL + "/admin", opts({ auth: { token: "wrong" } }));
  const [err] = await once(refused, "connect_error");
  assert.equal(err.message, "not authorized");
  assert.deepEqual(err.data, { code: 42 });
  refused.close();
  const unknown = io(URL + "/nope", opts());
  const [err2] = await once(unknown, "connect_error");
  assert.equal(err2.message, "Invalid namespace");
  unknown.close();
});

test("server-side disconnect is reported as such and not retried", async () => {
  const socket = await connected();
  const [reason] = await Promise.all([once(socket, "disconnect").then((a) => a[0]), socket.emit("disconnect_me")]);
  assert.equal(reason, "io server disconnect");
  assert.equal(socket.active, false);
});

test("mixed room: one broadcast reaches socket.io and JSON-protocol clients", async () => {
  const socket = await connected();
  await socket.timeout(2000).emitWithAck("join", "mixed");
  const [got] = await Promise.all([once(socket, "room_msg"), socket.timeout(2000).emitWithAck("to_room", "mixed", "to everyone")]);
  assert.deepEqual(got, ["to everyone"]);
  socket.disconnect();
});

test("reconnects after a server restart", async () => {
  const socket = await connected();
  const firstId = socket.id;
  const reconnected = once(socket.io, "reconnect");
  socket.emit("restart_server");
  await reconnected;
  if (!socket.connected) await once(socket, "connect");
  assert.notEqual(socket.id, firstId);
  assert.equal(await socket.timeout(2000).emitWithAck("echo", "back"), "back");
  socket.disconnect();
});
