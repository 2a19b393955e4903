// examples/c/chat.c, the chat every language's example serves, driven by two
// socket.io-client 4.8 clients through the shared scenario. ROOMCAST_C_CHAT
// lists its builds (make test-c: shared, static, ASan+UBSan).
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { io } from "socket.io-client";
import { startC } from "./c_process.mjs";
import { chatScenario } from "./chat_scenario.mjs";

const binaries = (process.env.ROOMCAST_C_CHAT ?? "").split(/\s+/).filter(Boolean);

test("ROOMCAST_C_CHAT names the C chat builds", () => assert.ok(binaries.length > 0));

for (const binary of binaries) {
  test(`${path.basename(binary)}: rooms and presence, then SIGTERM stops it`, { timeout: 30_000 }, async (t) => {
    const { child, url, exited } = await startC(t, binary, ["127.0.0.1:0"]);
    const { ada } = await chatScenario(t, url, io);
    ada.close();
    child.kill("SIGTERM");
    const [code, signal] = await exited;
    assert.deepEqual([code, signal], [0, null], "a clean exit on SIGTERM");
  });
}
