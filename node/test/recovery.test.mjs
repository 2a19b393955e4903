// Connection state recovery through the socket.io-shaped API: socket.io-client
// 4.8 and roomcast's client have their TCP connections cut, come back, and get
// their socket (id, rooms, data) and exactly the missed events, in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { io as sioClient } from "socket.io-client";
import { io as rcClient } from "roomcast/client";
import { cuttingProxy, serve, until } from "../test-fixtures/helpers.mjs";

const fast = { transports: ["websocket"], reconnectionDelay: 50, reconnectionDelayMax: 100 };

function app(io) {
  const seen = [];
  let middleware = 0;
  io.use((socket, next) => {
    middleware++;
    next();
  });
  io.on("connection", (socket) => {
    seen.push({ id: socket.id, recovered: socket.recovered, data: { ...socket.data } });
    if (!socket.recovered) {
      socket.join("r");
      socket.data.name = "ann";
    }
  });
  return { seen, middlewares: () => middleware };
}

/** The next `connect` after the connection was cut. */
const reconnected = (socket) => new Promise((r) => socket.once("disconnect", () => socket.once("connect", r)));

for (const [name, client, offsetArg] of [
  ["socket.io-client", sioClient, true],
  ["roomcast's client", rcClient, false],
]) {
  test(`${name}: a cut connection recovers its socket and the missed events`, async (t) => {
    const { io, port } = await serve(t, { connectionStateRecovery: { maxDisconnectionDuration: 30_000 } });
    const { seen, middlewares } = app(io);
    const proxy = await cuttingProxy(t, port);
    const socket = client(proxy.url, fast);
    t.after(() => socket.close());
    await once(socket, "connect");
    const got = [];
    socket.on("n", (...args) => got.push(args));
    await until(() => io.sockets.adapter?.rooms?.get?.("r")?.size === 1 || seen.length === 1, "joined");
    io.to("r").emit("n", 0);
    await until(() => got.length === 1, "first event");
    assert.equal(got[0].length, offsetArg ? 2 : 1, "socket.io-client passes the offset on; roomcast's client takes it off");
    const back = reconnected(socket);
    proxy.cut();
    await until(() => io.sockets.sockets.size === 0, "the server noticed");
    for (let n = 1; n < 4; n++) io.to("r").emit("n", n);
    await back;
    assert.equal(socket.recovered, true);
    await until(() => got.length === 4, "missed events");
    assert.deepEqual(got.map((a) => a[0]), [0, 1, 2, 3]);
    assert.equal(seen.length, 2);
    assert.deepEqual(seen[1], { id: seen[0].id, recovered: true, data: { name: "ann" } }, "same id, data back");
    assert.equal(middlewares(), 1, "middlewares skipped on recovery (skipMiddlewares defaults to true)");
    assert.ok(io.sockets.sockets.get(socket.id).rooms.has("r"), "rooms back");
  });
}

/** A socket.io-client of a server made with `opts`, its connection cut
 *  once and connected again. */
async function cutOnce(t, opts) {
  const { io, port } = await serve(t, opts);
  const { seen, middlewares } = app(io);
  const proxy = await cuttingProxy(t, port);
  const socket = sioClient(proxy.url, fast);
  t.after(() => socket.close());
  await once(socket, "connect");
  const back = reconnected(socket);
  proxy.cut();
  await back;
  return { socket, seen, middlewares };
}

test("skipMiddlewares: false runs the middlewares again", async (t) => {
  const { socket, seen, middlewares } = await cutOnce(t, { connectionStateRecovery: { skipMiddlewares: false } });
  assert.equal(socket.recovered, true);
  assert.equal(middlewares(), 2);
  assert.equal(seen[1].recovered, true);
});

test("without the option nothing is recovered", async (t) => {
  const { socket, seen } = await cutOnce(t, undefined);
  assert.ok(!socket.recovered, "socket.io-client leaves it undefined without a pid");
  assert.deepEqual(seen.map((s) => s.recovered), [false, false]);
  assert.notEqual(seen[1].id, seen[0].id);
});
