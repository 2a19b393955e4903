// Observability through the socket.io-shaped API: `metricsPath` serves the
// Prometheus metrics, `io.metrics()` returns the same text, and `io.stats()`
// has the connection, ack-timeout and recovery counters.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, serve } from "../test-fixtures/helpers.mjs";

test("metricsPath serves Prometheus metrics; stats() has the new counters", async (t) => {
  const { io, url } = await serve(t, { metricsPath: "/metrics" });
  io.on("connection", (socket) => socket.join("r"));
  const client = await connect(t, url);
  client.on("q", () => {}); // never acks
  const [socket] = await io.fetchSockets();
  await assert.rejects(socket.timeout(50).emitWithAck("q"), { code: "ERR_TIMEOUT" });
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^application\/openmetrics-text/);
  const text = await res.text();
  for (const line of [
    "roomcast_connections 1",
    'roomcast_sockets{namespace="/"} 1',
    'roomcast_rooms{namespace="/"} 1',
    'roomcast_recovery_sessions{namespace="/"} 0',
    "roomcast_ack_timeouts_total 1",
    "# EOF",
  ]) {
    assert.ok(text.split("\n").includes(line), `${line} in\n${text}`);
  }
  // The runtime's tasks: the accept loop and the session at least.
  const tasks = text.match(/^roomcast_runtime_tasks (\d+)$/m);
  assert.ok(tasks && Number(tasks[1]) >= 2, text);
  assert.ok(io.metrics().includes("roomcast_ack_timeouts_total 1"));
  const stats = io.stats();
  assert.deepEqual(
    [stats.connections, stats.ackTimeouts, stats.recoveryHits, stats.recoveryMisses, stats.retriesDeduplicated],
    [1, 1, 0, 0, 0],
  );
});

test("no metrics without metricsPath", async (t) => {
  const { url } = await serve(t);
  assert.equal((await fetch(`${url}/metrics`)).status, 404);
});
