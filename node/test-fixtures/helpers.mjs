// What the suites under test/ share: servers and socket.io-clients closed
// when the test ends, waiting for events and conditions, the app a cluster
// node serves, and child processes (a cluster node; a script that must exit
// by itself). Not under test/: `node --test test/` runs every file there.
import assert from "node:assert/strict";
import { once } from "node:events";
import { spawn } from "node:child_process";
import { io as sioClient } from "socket.io-client";
import { Server } from "roomcast";

const PACKAGE_DIR = new URL("..", import.meta.url).pathname;
const CLUSTER_NODE = new URL("./cluster-node.mjs", import.meta.url).pathname;

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A server on a free port; closed when the test ends. */
export async function serve(t, opts) {
  const io = new Server(opts);
  const port = await io.listen(0);
  t.after(() => io.close());
  return { io, url: `http://127.0.0.1:${port}`, port };
}

/** A connected socket.io-client (websocket only unless told); closed at the end. */
export async function connect(t, url, opts = {}) {
  const socket = sioClient(url, { transports: ["websocket"], reconnection: false, ...opts });
  t.after(() => socket.close());
  await once(socket, "connect");
  return socket;
}

/** A connected socket.io-client of `user` (its `auth.user`); closed at the end. */
export function client(t, url, user) {
  return connect(t, url, { auth: { user } });
}

/** The next `event` of `emitter` (first argument), within `ms`. */
export function next(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    emitter.once(event, (value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** Every `event` `emitter` gets from now on (first arguments). */
export function record(emitter, event) {
  const seen = [];
  emitter.on(event, (value) => seen.push(value));
  return seen;
}

/** Wait (at most `ms`) until `check()` (or the promise it returns) is true. */
export async function until(check, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

/** Sockets name their user from `auth.user`; "enter" joins a room (so that
 *  presence.test.mjs and the node in a child process serve the same app). */
export function presenceApp(io) {
  io.use((socket, next) => {
    socket.setUserId(socket.handshake.auth.user);
    next();
  });
  io.on("connection", (socket) => {
    socket.on("enter", (room, ack) => {
      socket.join(room);
      ack();
    });
  });
  return io;
}

/** A node of the cluster `{ url, prefix }` in a child process (cluster-node.mjs,
 *  node TTL `ttl` ms, its default without): `{ child, port, nodeId }` once it
 *  listens, so that a test can kill or freeze it; killed (thawed first) when
 *  the test ends. */
export async function clusterNodeProcess(t, { url, prefix }, ttl) {
  const args = [CLUSTER_NODE, url, prefix, ...(ttl === undefined ? [] : [String(ttl)])];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  t.after(() => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGCONT");
    child.kill("SIGKILL");
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  await until(() => out.includes("\n") || child.exitCode !== null, "the node in a child process listens", 15_000);
  const { port, nodeId } = JSON.parse(out.split("\n")[0]);
  return { child, port, nodeId };
}

/** Runs `script` with `node -e` in the package directory (so it can require
 *  "roomcast") and returns its output, asserting that it exits with 0 by
 *  itself within 15 s: nothing the package leaves open keeps it alive. */
export async function exitsByItself(script) {
  const child = spawn(process.execPath, ["-e", script], { cwd: PACKAGE_DIR });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const [code, signal] = await once(child, "exit");
  clearTimeout(killer);
  assert.equal(signal, null, `killed: it did not exit by itself (${out})`);
  assert.equal(code, 0, out);
  return out;
}

/** A TCP proxy to `port` whose `cut()` drops every connection through it at
 *  once, as a network failure would, and whose `pause()` stalls what the
 *  server sends; closed when the test ends. */
export async function cuttingProxy(t, port) {
  const { createServer, connect: tcp } = await import("node:net");
  const links = new Set();
  const server = createServer((inbound) => {
    const outbound = tcp(port, "127.0.0.1");
    const pair = [inbound, outbound];
    links.add(pair);
    for (const s of pair) s.on("error", () => {}).on("close", () => links.delete(pair));
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const cut = () => {
    for (const pair of links) pair.forEach((s) => s.destroy());
    links.clear();
  };
  /** Stop reading what the server sends (a client that does not read), until `resume`. */
  const pause = () => {
    for (const [inbound, outbound] of links) {
      outbound.unpipe(inbound);
      outbound.pause();
    }
  };
  const resume = () => {
    for (const [inbound, outbound] of links) outbound.pipe(inbound);
  };
  t.after(() => {
    cut();
    server.close();
  });
  return { url: `http://127.0.0.1:${server.address().port}`, cut, pause, resume };
}
