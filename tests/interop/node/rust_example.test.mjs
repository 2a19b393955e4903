// examples/rust/chat.rs (served by core/tests/interop.rs at ROOMCAST_URL),
// driven by two socket.io-client 4.8 clients.
import { test } from "node:test";
import { io } from "socket.io-client";
import { chatScenario } from "./chat_scenario.mjs";

test("the Rust chat example: rooms and presence", { timeout: 30_000 }, async (t) => {
  await chatScenario(t, process.env.ROOMCAST_URL, io);
});
