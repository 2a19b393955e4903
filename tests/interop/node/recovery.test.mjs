// Connection state recovery with socket.io-client 4.x against roomcast.
// Run by core/tests/interop.rs: ROOMCAST_URL has a 60 s recovery window,
// ROOMCAST_SHORT_URL one of 300 ms.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";

const sockets = [];
after(() => sockets.forEach((s) => s.disconnect()));
const connect = (url, extra = {}) => {
  const socket = io(url, { ...opts, ...extra });
  sockets.push(socket);
  return socket;
};
const opts = { transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 200, timeout: 5000 };
const once = (socket, event) => new Promise((resolve) => socket.once(event, (...args) => resolve(args)));

/** Kill the TCP connection under the client, as a network failure would. */
const cut = (socket) => socket.io.engine.transport.ws._socket.destroy();

/** The socket's next connection after a reconnection (its `recovered` is set then). */
const reconnection = (socket) => new Promise((resolve) => socket.io.once("reconnect", () => socket.once("connect", resolve)));

test("TCP killed mid-stream: the client gets exactly the missed events, in order, then new ones", async () => {
  const socket = connect(process.env.ROOMCAST_URL);
  await once(socket, "connect");
  assert.equal(socket.recovered, false);
  const firstId = socket.id;
  assert.equal(await socket.timeout(2000).emitWithAck("join", "r"), "ok");
  const got = [];
  let offsets = 0;
  const done = new Promise((resolve) =>
    socket.on("n", (n, offset) => {
      got.push(n);
      if (typeof offset === "string") offsets++;
      if (got.length === 40) cut(socket); // the server keeps sending meanwhile
      if (n === 199) resolve();
    }),
  );
  const reconnected = reconnection(socket);
  socket.emit("stream", 200, 5); // 200 events to room r, one every 5 ms
  await reconnected;
  assert.equal(socket.recovered, true, "recovered");
  assert.equal(socket.id, firstId, "same socket id");
  await done;
  assert.deepEqual(got, [...Array(200).keys()], "every event exactly once, in order");
  assert.equal(offsets, 200, "each event carried its offset");
  // Rooms came back: a new broadcast to r still arrives.
  const next = once(socket, "n");
  socket.emit("stream", 1, 0);
  assert.equal((await next)[0], 0);
  socket.disconnect();
});

test("back after the window: a clean new session", async () => {
  const socket = connect(process.env.ROOMCAST_SHORT_URL, { reconnectionDelay: 1000, reconnectionDelayMax: 1000, randomizationFactor: 0 });
  await once(socket, "connect");
  const firstId = socket.id;
  assert.equal(await socket.timeout(2000).emitWithAck("join", "r"), "ok");
  socket.emit("stream", 1, 0);
  await once(socket, "n");
  cut(socket);
  await reconnection(socket);
  assert.equal(socket.recovered, false);
  assert.notEqual(socket.id, firstId);
  // Not in r any more: nothing from the room until it joins again.
  assert.equal(await socket.timeout(2000).emitWithAck("room_size", "r"), 0);
  socket.disconnect();
});

test("a client disconnecting on purpose does not recover", async () => {
  const socket = connect(process.env.ROOMCAST_URL);
  await once(socket, "connect");
  const firstId = socket.id;
  socket.disconnect();
  socket.connect();
  await once(socket, "connect");
  assert.notEqual(socket.id, firstId);
  assert.equal(socket.recovered, false);
  socket.disconnect();
});
