// examples/c/chat.c, the chat every language's example serves, driven by two
// socket.io-client 4.8 clients through the shared scenario. ROOMCAST_C_CHAT
// lists its builds (make test-c: shared, static, ASan+UBSan).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { test } from "node:test";
import { io } from "socket.io-client";
import { chatScenario } from "./chat_scenario.mjs";

const binaries = (process.env.ROOMCAST_C_CHAT ?? "").split(/\s+/).filter(Boolean);

test("ROOMCAST_C_CHAT names the C chat builds", () => assert.ok(binaries.length > 0));

for (const binary of binaries) {
  test(`${path.basename(binary)}: rooms and presence, then SIGTERM stops it`, { timeout: 30_000 }, async (t) => {
    const child = spawn(binary, ["127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
    t.after(() => child.kill("SIGKILL"));
    const exited = once(child, "exit");
    let out = "";
    const port = await new Promise((resolve, reject) => {
      child.stdout.on("data", (d) => {
        out += d;
        const m = out.match(/listening on (\d+)/);
        if (m) resolve(m[1]);
      });
      child.once("exit", (code) => reject(new Error(`${binary} exited with ${code}: ${out}`)));
    });
    const { ada } = await chatScenario(t, `http://127.0.0.1:${port}`, io);
    ada.close();
    child.kill("SIGTERM");
    const [code, signal] = await exited;
    assert.deepEqual([code, signal], [0, null], "a clean exit on SIGTERM");
  });
}
