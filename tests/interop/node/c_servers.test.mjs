// The C examples (examples/c, built by make test-c against the installed
// libroomcast, shared and static) driven by the real socket.io-client and a
// JSON-protocol WebSocket client. ROOMCAST_C_SERVERS lists the binaries.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { io } from "socket.io-client";
import { startC } from "./c_process.mjs";
import WebSocket from "ws";

const servers = (process.env.ROOMCAST_C_SERVERS ?? "").split(/\s+/).filter(Boolean);
// The C client example's command (it may start with valgrind).
const clientCommand = (process.env.ROOMCAST_C_CLIENT ?? "").split(/\s+/).filter(Boolean);

function connect(t, url, auth) {
  const socket = io(url, { transports: ["websocket"], reconnection: false, auth });
  t.after(() => socket.close());
  return socket;
}

test("ROOMCAST_C_SERVERS names the C servers", () => assert.ok(servers.length > 0));

for (const binary of servers) {
  const name = path.basename(binary);
  const callbacks = name.startsWith("chat_server");

  test(`${name}: refusal, rooms, acks both ways, binary, JSON clients, stop with clients`, { timeout: 30_000 }, async (t) => {
    const { child, url, port } = await startC(t, binary);
    const nameless = connect(t, url, {});
    assert.equal((await once(nameless, "connect_error"))[0].message, "pick a name first");

    const [ada, bob] = [connect(t, url, { name: "ada" }), connect(t, url, { name: "bob" })];
    await Promise.all([once(ada, "connect"), once(bob, "connect")]);
    assert.deepEqual(await new Promise((r) => ada.emit("join", "rust", (...a) => r(a))), ["joined", "rust"]);
    await bob.emitWithAck("join", "rust");
    const said = Promise.all([once(ada, "said"), once(bob, "said")]);
    assert.equal(await bob.emitWithAck("say", "rust", "hi"), true);
    assert.deepEqual(await said, [["rust", "hi"], ["rust", "hi"]]);

    // Echo of anything with an ack, binary included.
    const echoed = await new Promise((r) => ada.emit("echo", { n: 1 }, Buffer.from([1, 2, 3]), (...a) => r(a)));
    assert.deepEqual(echoed[0], { n: 1 });
    assert.deepEqual([...new Uint8Array(echoed[1])], [1, 2, 3]);
    // An event without an ack gets none, and the connection goes on.
    ada.emit("fire-and-forget", 1);
    assert.deepEqual(await ada.emitWithAck("echo", "still here"), "still here");

    if (callbacks) {
      // The server asks the client, and answers its own timeout.
      ada.on("question", (a, b, ack) => ack(a * b));
      const answer = once(ada, "answer");
      ada.emit("ask");
      assert.deepEqual(await answer, [42]);
      // Users: every socket of "bob" gets a direct message.
      const bob2 = connect(t, url, { name: "bob" });
      await once(bob2, "connect");
      const dms = Promise.all([once(bob, "dm"), once(bob2, "dm")]);
      ada.emit("dm", "bob", "psst");
      assert.deepEqual(await dms, [["bob", "psst"], ["bob", "psst"]]);
      bob2.close();

      // Binary from the server, the socket's rooms, a kick.
      const blob = once(ada, "blob");
      ada.emit("blob", Buffer.from([9, 8, 7]));
      assert.deepEqual([...new Uint8Array((await blob)[0])], [9, 8, 7]);
      assert.deepEqual((await ada.emitWithAck("rooms")).sort(), [ada.id, "rust", "user:ada"].sort());
      const kicked = connect(t, url, { name: "kicked" });
      await once(kicked, "connect");
      const out = once(kicked, "disconnect");
      kicked.emit("kick");
      assert.equal((await out)[0], "io server disconnect");
      const silent = once(bob, "answer");
      bob.on("question", () => {});
      bob.emit("ask");
      assert.deepEqual(await silent, ["timeout"]);
    }

    // A JSON-protocol client meets the Socket.IO ones in the room.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?name=json`);
    t.after(() => ws.close());
    const messages = [];
    let wake = () => {};
    ws.on("message", (raw) => {
      messages.push(JSON.parse(raw));
      wake();
    });
    const message = async (pred) => {
      for (;;) {
        const i = messages.findIndex(pred);
        if (i >= 0) return messages.splice(i, 1)[0];
        await new Promise((r) => (wake = r));
      }
    };
    await once(ws, "open");
    ws.send(JSON.stringify({ type: "event", event: "join", data: "rust", id: 1 }));
    assert.deepEqual((await message((m) => m.type === "ack")).data, ["joined", "rust"]);
    await ada.emitWithAck("say", "rust", "to everyone");
    const heard = await message((m) => m.type === "event" && m.event === "said");
    assert.deepEqual(heard.data, ["rust", "to everyone"]);

    if (callbacks) {
      // The C client (JSON protocol) joins through the server's handler and hears its own message.
      assert.ok(clientCommand.length, "ROOMCAST_C_CLIENT names the C client");
      const [command, ...args] = clientCommand;
      const c = spawn(command, [...args, `ws://127.0.0.1:${port}/ws?name=c`], { stdio: ["ignore", "pipe", "inherit"] });
      t.after(() => c.kill("SIGKILL"));
      let out = "";
      c.stdout.on("data", (d) => (out += d));
      const [code] = await once(c, "exit");
      assert.equal(code, 0, out);
      assert.match(out, /^connected as \S+$/m);
      assert.match(out, /^ack ok \["joined","rust"\]$/m);
      assert.match(out, /^event said .*hello from C/m);
      assert.match(out, /client: done/);
    }

    // Stop while clients are connected: they are told, the process exits.
    const gone = once(bob, "disconnect");
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    assert.equal(code, 0);
    assert.equal((await gone)[0], "transport close");
  });
}
