// examples/node/chat.mjs as installed from the packed tarball: run with
// ROOMCAST_EXAMPLE=<a fresh project>/chat.mjs (make test-node does). Two real
// socket.io-clients chat, with presence; on SIGTERM the process closes the
// server and exits by itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { io } from "socket.io-client";
import { chatScenario } from "../../tests/interop/node/chat_scenario.mjs";

const example = process.env.ROOMCAST_EXAMPLE;

test("the chat example, installed from the tarball", { timeout: 30_000 }, async (t) => {
  assert.ok(example, "set ROOMCAST_EXAMPLE to the installed chat.mjs");
  const child = spawn(process.execPath, [example], { cwd: path.dirname(example), env: { ...process.env, PORT: "0" } });
  t.after(() => child.kill("SIGKILL"));
  let out = "";
  child.stderr.on("data", (d) => process.stderr.write(d));
  const url = await new Promise((resolve, reject) => {
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/chat on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`exited with ${code}: ${out}`)));
  });
  const { ada } = await chatScenario(t, url, io);

  // Graceful stop: the clients are told, the process exits by itself.
  const told = once(ada, "disconnect");
  child.kill("SIGTERM");
  const [code] = await once(child, "exit");
  assert.equal(code, 0);
  assert.equal((await told)[0], "transport close"); // as socket.io's io.close()
});
