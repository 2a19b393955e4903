// Backpressure through the socket.io-shaped API: a socket.io-client 4.8 that
// stops reading (behind a proxy the test pauses) shows up in
// `socket.bufferedAmount`, `socket.drained()` waits for it to catch up,
// volatile emits are dropped for it, and `overflow` decides for the rest.
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { io as sioClient } from "socket.io-client";
import { Server } from "roomcast";
import { cuttingProxy, serve, sleep, until } from "../test-fixtures/helpers.mjs";

const blob = "x".repeat(32 * 1024);
const small = { outboundQueueMessages: 64, outboundQueueBytes: 256 * 1024 };

/** A socket.io-client through a paused proxy, and its server-side socket. */
async function stalled(t, io, port) {
  const proxy = await cuttingProxy(t, port);
  const connected = once(io, "connection");
  const client = sioClient(proxy.url, { transports: ["websocket"], reconnection: false });
  t.after(() => client.close());
  const [socket] = await connected;
  await once(client, "connect");
  proxy.pause();
  return { proxy, client, socket };
}

/** Big emits, enough to fill the kernel's socket buffers too, at their largest; stops when the
 *  socket is closed as a slow consumer (the emit that overflowed throws). */
async function flood(socket, volatile) {
  for (let i = 0; i < 1000 && socket.connected; i++) {
    try {
      (volatile ? socket.volatile : socket).emit("msg", { i, blob });
    } catch (err) {
      assert.ok(["ERR_QUEUE_FULL", "ERR_CLOSED"].includes(err.code), err.code);
      return;
    }
    await sleep(0);
  }
}

test("bufferedAmount, drained() and the drop policy", async (t) => {
  const { io, port } = await serve(t, { ...small, overflow: "drop" });
  const { proxy, client, socket } = await stalled(t, io, port);
  const got = [];
  client.on("msg", ({ i }) => got.push(i));
  let disconnected = false;
  socket.on("disconnect", () => (disconnected = true));
  await flood(socket, false);
  await until(() => io.stats().dropped > 0, "reliable emits dropped");
  // A drop can come while the kernel still has room (the writer had not caught up yet): go on
  // until the queue itself holds data.
  for (let i = 1000; socket.bufferedAmount <= 128 * 1024; i++) {
    socket.emit("msg", { i, blob });
    await sleep(0);
  }
  assert.ok(socket.bufferedAmount > 128 * 1024, `near the bound: ${socket.bufferedAmount}`);
  let done = false;
  const drained = socket.drained().then(() => (done = true));
  await sleep(100);
  assert.equal(done, false, "still buffered while the client does not read");
  proxy.resume();
  await drained;
  assert.equal(socket.bufferedAmount, 0);
  const end = once(client, "end");
  socket.emit("end");
  await end;
  assert.deepEqual(got, [...got].sort((a, b) => a - b), "what was kept arrives in order");
  assert.ok(got.length > 0 && got.length < 1000, `some dropped: ${got.length}`);
  assert.equal(disconnected, false, "the drop policy keeps the socket");
});

test("volatile emits are dropped; the close policy disconnects the slow client", async (t) => {
  const { io, port } = await serve(t, small);
  const { socket } = await stalled(t, io, port);
  const gone = once(socket, "disconnect");
  await flood(socket, true);
  await until(() => io.stats().dropped > 0, "volatile emits dropped");
  assert.equal(socket.connected, true, "volatile overflow keeps the socket");
  await flood(socket, false);
  await gone;
  assert.equal(io.stats().slowConsumerCloses, 1);
  assert.equal(socket.bufferedAmount, 0);
  await socket.drained(); // resolves for a socket that is gone
});

test("the overflow policy is checked", () => {
  assert.throws(() => new Server({ overflow: "ignore" }), { code: "ERR_INVALID_ARGUMENT" });
});
