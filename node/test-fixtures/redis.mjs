// redis-servers of a test suite's own, on free ports: a single server
// (which a test can kill and start again on the same port) and a 3-master
// Redis Cluster. The Node suites and tests/interop's C cluster suite use them;
// a suite fails when they cannot start.
import { once } from "node:events";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const REDIS_SERVER = process.env.ROOMCAST_REDIS_SERVER ?? "redis-server";
const REDIS_CLI = process.env.ROOMCAST_REDIS_CLI ?? "redis-cli";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const run = promisify(execFile);

/** A free TCP port on 127.0.0.1. */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether `port` on 127.0.0.1 can be bound now. */
async function bindable(port) {
  const server = net.createServer();
  const ok = await new Promise((resolve) => server.once("error", () => resolve(false)).listen(port, "127.0.0.1", () => resolve(true)));
  if (ok) await new Promise((resolve) => server.close(resolve));
  return ok;
}

/** A free port for a Redis Cluster node: Redis also listens on port + 10000
 *  (its cluster bus), so the port must be at most 55535 and that one free too. */
async function clusterPort() {
  for (;;) {
    const port = await freePort();
    if (port <= 55_535 && (await bindable(port + 10_000))) return port;
  }
}

/** Whether a Redis answers PING on `port`. */
function ping(port) {
  return new Promise((resolve) => {
    const c = net.createConnection({ port, host: "127.0.0.1" });
    let reply = "";
    const done = (ok) => (c.destroy(), resolve(ok));
    c.setTimeout(500, () => done(false));
    c.on("connect", () => c.write("PING\r\n"));
    c.on("data", (d) => (reply += d) && reply.includes("\r\n") && done(reply.startsWith("+PONG")));
    c.on("error", () => done(false));
  });
}

/** One redis-server process on `port` (extra arguments after the defaults), up when this resolves. */
async function spawnRedis(port, extra = [], cwd = undefined) {
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extra];
  const child = spawn(REDIS_SERVER, args, { stdio: ["ignore", "ignore", "pipe"], cwd });
  let stderr = "";
  let exit;
  child.stderr.on("data", (d) => (stderr += d));
  child.on("error", (err) => (exit = err.message));
  child.on("exit", (code, signal) => (exit = `exit ${code ?? signal}`));
  const stop = async () => {
    if (exit !== undefined) return;
    child.kill("SIGKILL");
    await once(child, "exit");
  };
  const deadline = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (exit !== undefined || Date.now() > deadline) {
      await stop();
      throw new Error(`${REDIS_SERVER} did not start on port ${port} (${exit ?? "no PONG"}): ${stderr}`);
    }
    await sleep(50);
  }
  return stop;
}

/**
 * A redis-server of the suite's own on a free port: `{url, stop, kill, restart}`.
 * `kill` SIGKILLs it; `restart` starts a new, empty one on the same port.
 */
export async function startRedis() {
  const port = await freePort();
  let stop = await spawnRedis(port);
  const redis = {
    url: `redis://127.0.0.1:${port}`,
    stop: () => stop(),
    kill: () => stop(),
    restart: async () => {
      await stop();
      stop = await spawnRedis(port);
    },
  };
  return redis;
}

/** A 3-master Redis Cluster (redis-server --cluster-enabled, joined by redis-cli --cluster create): `{url, stop}`. */
export async function startRedisCluster() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "roomcast-redis-cluster-"));
  const ports = [];
  while (ports.length < 3) {
    const port = await clusterPort();
    if (!ports.includes(port)) ports.push(port);
  }
  const stops = [];
  const stop = async () => {
    await Promise.all(stops.map((s) => s()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      stops.push(await spawnRedis(port, ["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`], dir));
    }
    const nodes = ports.map((p) => `127.0.0.1:${p}`);
    // It waits for the nodes to join without a limit of its own.
    await run(REDIS_CLI, ["--cluster", "create", ...nodes, "--cluster-replicas", "0", "--cluster-yes"], { timeout: 30_000 });
    const deadline = Date.now() + 20_000;
    for (const port of ports) {
      for (;;) {
        const { stdout } = await run(REDIS_CLI, ["-p", String(port), "cluster", "info"]);
        if (stdout.includes("cluster_state:ok")) break;
        if (Date.now() > deadline) throw new Error(`the Redis Cluster did not become ready (port ${port})`);
        await sleep(100);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const rest = ports.slice(1).map((p) => `node=127.0.0.1:${p}`).join("&");
  return { url: `redis-cluster://127.0.0.1:${ports[0]}?${rest}`, stop };
}
