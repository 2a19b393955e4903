// At-least-once emits through `roomcast/client`: with socket.io-client's
// `retries` and `ackTimeout`, an emit whose connection is cut (by a proxy the
// test controls) while the server handles it is sent again, and the server's
// listener still runs once per emit, in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { io } from "roomcast/client";
import { cuttingProxy, serve, sleep, until } from "../test-fixtures/helpers.mjs";

test("retried emits are handled once, in order, across a cut", async (t) => {
  const { io: server, port } = await serve(t);
  const seen = [];
  let release;
  const held = new Promise((r) => (release = r));
  server.on("connection", (socket) => {
    socket.on("work", async (n, ack) => {
      seen.push(n);
      if (n === 0) await held; // answered only after the connection was cut
      ack(n * 10);
    });
  });
  const proxy = await cuttingProxy(t, port);
  const client = io(proxy.url, {
    transports: ["websocket"],
    reconnectionDelay: 20,
    reconnectionDelayMax: 50,
    retries: 20,
    ackTimeout: 150,
  });
  t.after(() => client.close());
  await once(client, "connect");
  const first = client.emitWithAck("work", 0);
  await until(() => seen.length > 0, "the first emit reached the server");
  proxy.cut(); // its answer now goes to a connection that is gone
  await sleep(400); // reconnected, and retried while the listener still runs
  release();
  assert.equal(await first, 0);
  for (let n = 1; n < 10; n++) client.emit("work", n);
  const [err, last] = await new Promise((r) => client.emit("work", 10, (...a) => r(a)));
  assert.deepEqual([err, last], [null, 100], "with retries, acks are error-first");
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "each emit once, in order");
});

test("an emit never acked fails after its last try", async (t) => {
  const { io: server, url } = await serve(t);
  let runs = 0;
  server.on("connection", (socket) => socket.on("stuck", () => runs++)); // never acks
  const client = io(url, { transports: ["websocket"], retries: 2, ackTimeout: 50 });
  t.after(() => client.close());
  await once(client, "connect");
  const [err] = await new Promise((r) => client.emit("stuck", (...a) => r(a)));
  assert.equal(err?.code, "ERR_TIMEOUT");
  assert.equal(runs, 1, "the repeats were recognised");
});
