// A redis-server of a test suite's own, on a free port: presence.test.mjs
// and cluster.test.mjs start one each.
import { once } from "node:events";
import { spawn } from "node:child_process";
import net from "node:net";

const REDIS_SERVER = "/usr/bin/redis-server";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1. */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
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

/** A redis-server of the suite's own on a free port (the suite fails if it cannot start). */
export async function startRedis() {
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const child = spawn(REDIS_SERVER, args, { stdio: ["ignore", "ignore", "pipe"] });
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
  return { url: `redis://127.0.0.1:${port}`, stop };
}
