// Client side of bench/peers/check.sh: drives one running peer with a real client and checks
// the bench/APP.md app. Every wait is bounded.
//
//   node bench/peers/check.mjs socketio <port>   # Socket.IO peers (socket.io-client, websocket)
//   node bench/peers/check.mjs ws <port>         # JSON-protocol peers (ws, path /ws)
//
// Clients come from tests/interop/node_modules (run `make deps-node` first).
// Exits 0 when every check passed, 1 otherwise.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "..", "tests", "interop", "package.json"));
const { io } = require("socket.io-client");
const WebSocket = require("ws");

const TIMEOUT_MS = 5000;
const [mode, portArg] = process.argv.slice(2);
const port = Number(portArg);
if (!["socketio", "ws"].includes(mode) || !Number.isInteger(port) || port <= 0) {
  console.error("usage: node check.mjs socketio|ws <port>");
  process.exit(2);
}

// A hard stop for the whole run, whatever hangs.
setTimeout(() => {
  console.error("check.mjs: overall timeout");
  process.exit(1);
}, 30_000).unref();

function withTimeout(promise, what, ms = TIMEOUT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout (${ms} ms) waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const clip = (v) => {
  const s = JSON.stringify(v);
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
};

function assertEqual(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Error(`${what}: expected ${clip(expected)}, got ${clip(actual)}`);
  }
}

/** Sequences: report the first position that differs, not the whole arrays. */
function assertSeq(actual, expected, what) {
  const n = Math.max(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (!isDeepStrictEqual(actual[i], expected[i])) {
      throw new Error(`${what} differ at #${i}: expected ${clip(expected[i])}, got ${clip(actual[i])}`);
    }
  }
}

/** A payload shaped like the load generator's: padded to 100 bytes of JSON. */
function payload(p, n) {
  const base = { p, n, t: 123456789 + n, x: "" };
  const pad = 100 - JSON.stringify(base).length;
  return { ...base, x: "x".repeat(Math.max(0, pad)) };
}

/** A queue of received items with a bounded `next(pred)`. */
class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
  }
  push(item) {
    this.items.push(item);
    for (const w of [...this.waiters]) w();
  }
  next(pred, what) {
    return withTimeout(
      new Promise((resolve) => {
        const check = () => {
          const i = this.items.findIndex(pred);
          if (i >= 0) {
            this.waiters = this.waiters.filter((w) => w !== check);
            resolve(this.items.splice(i, 1)[0]);
            return true;
          }
          return false;
        };
        if (!check()) this.waiters.push(check);
      }),
      what,
    );
  }
}

let passed = 0;
let failed = 0;
async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`    ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`    FAIL ${name}: ${err.message}`);
  }
}

async function checkSocketIo() {
  const url = `http://127.0.0.1:${port}`;
  const opts = { transports: ["websocket"], reconnection: false, forceNew: true, timeout: TIMEOUT_MS };
  const a = io(url, opts);
  const b = io(url, opts);
  const inA = new Inbox();
  const inB = new Inbox();
  a.on("msg", (m) => inA.push(m));
  b.on("msg", (m) => inB.push(m));
  const connected = (s, name) =>
    withTimeout(
      new Promise((resolve, reject) => {
        if (s.connected) return resolve();
        s.once("connect", resolve);
        s.once("connect_error", (e) => reject(new Error(`${name} connect_error: ${e.message}`)));
      }),
      `${name} to connect`,
    );
  try {
    await step("two clients connect over websocket", async () => {
      await Promise.all([connected(a, "A"), connected(b, "B")]);
      assertEqual(a.io.engine.transport.name, "websocket", "A transport");
      assertEqual(b.io.engine.transport.name, "websocket", "B transport");
    });
    await step("echo ack round trip", async () => {
      const d = { hello: "world", n: 42, list: [1, "two", null], nested: { ok: true } };
      const [ra, rb] = await Promise.all([
        withTimeout(a.emitWithAck("echo", d), "A echo ack"),
        withTimeout(b.emitWithAck("echo", "plain string"), "B echo ack"),
      ]);
      assertEqual(ra, d, "A echo ack");
      assertEqual(rb, "plain string", "B echo ack");
    });
    await step("publish reaches the other member as msg, not the sender", async () => {
      const p = payload(0, 1);
      a.emit("publish", p);
      const got = await inB.next(() => true, "B to get msg");
      assertEqual(got, p, "B msg");
      // Let anything misrouted to A arrive, then check A got nothing.
      await withTimeout(a.emitWithAck("echo", 0), "A echo ack");
      await sleep(100);
      assertEqual(inA.items.length, 0, "msgs at the sender");
    });
    await step("100 publishes arrive once each, in order, both directions", async () => {
      const sent = { a: [], b: [] };
      for (let n = 2; n < 102; n++) {
        const pa = payload(0, n);
        const pb = payload(1, n);
        sent.a.push(pa);
        sent.b.push(pb);
        a.emit("publish", pa);
        b.emit("publish", pb);
      }
      const gotB = [];
      const gotA = [];
      for (let i = 0; i < 100; i++) gotB.push(await inB.next(() => true, `B msg #${i}`));
      for (let i = 0; i < 100; i++) gotA.push(await inA.next(() => true, `A msg #${i}`));
      assertSeq(gotB, sent.a, "B's msgs");
      assertSeq(gotA, sent.b, "A's msgs");
      await sleep(100);
      assertEqual(inA.items.length + inB.items.length, 0, "extra msgs");
    });
  } finally {
    a.close();
    b.close();
  }
}

async function checkWs() {
  const url = `ws://127.0.0.1:${port}/ws`;
  const open = (name) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const inbox = new Inbox();
    const client = { ws, inbox, name, clientId: undefined, raw: [] };
    ws.on("message", (data, isBinary) => {
      const text = data.toString();
      client.raw.push(text);
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        msg = { type: "<not json>", text };
      }
      if (isBinary) msg = { type: "<binary>", text };
      if (msg.type === "connected") {
        client.clientId = msg.clientId;
        return;
      }
      inbox.push(msg);
    });
    const opened = withTimeout(
      new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", (e) => reject(new Error(`${name}: ${e.message}`)));
      }),
      `${name} to open`,
    );
    return { client, opened };
  };
  const A = open("A");
  const B = open("B");
  const a = A.client;
  const b = B.client;
  const sendJson = (c, obj) => c.ws.send(JSON.stringify(obj));
  try {
    await step("two clients open /ws", async () => {
      await Promise.all([A.opened, B.opened]);
    });
    await step("join → joined", async () => {
      sendJson(a, { type: "join", room: "bench" });
      sendJson(b, { type: "join", room: "bench" });
      assertEqual(await a.inbox.next((m) => m.type === "joined", "A joined"), { type: "joined", room: "bench" }, "A joined");
      assertEqual(await b.inbox.next((m) => m.type === "joined", "B joined"), { type: "joined", room: "bench" }, "B joined");
    });
    await step("echo event → ack", async () => {
      const d = { hello: "world", n: 42, list: [1, "two", null], nested: { ok: true } };
      sendJson(a, { type: "event", event: "echo", data: d, id: 7 });
      sendJson(b, { type: "event", event: "echo", data: "plain", id: 0 });
      assertEqual(await a.inbox.next((m) => m.type === "ack" && m.id === 7, "A ack 7"), { type: "ack", id: 7, data: d }, "A ack");
      assertEqual(await b.inbox.next((m) => m.type === "ack" && m.id === 0, "B ack 0"), { type: "ack", id: 0, data: "plain" }, "B ack");
    });
    await step("message relayed to the other member with the exact shape", async () => {
      const p = payload(0, 1);
      sendJson(a, { type: "message", room: "bench", payload: p });
      const got = await b.inbox.next((m) => m.type === "message", "B message");
      assertEqual(Object.keys(got).sort(), ["from", "payload", "room", "type", "userId"], "message keys");
      if (typeof got.from !== "string" || got.from === "") throw new Error(`from is not an id: ${JSON.stringify(got.from)}`);
      if (a.clientId !== undefined) assertEqual(got.from, a.clientId, "from = A's clientId");
      assertEqual(got, { type: "message", room: "bench", from: got.from, userId: null, payload: p }, "relayed message");
      // The sender gets nothing: after its own echo round trip, its inbox is empty.
      sendJson(a, { type: "event", event: "echo", data: null, id: 8 });
      await a.inbox.next((m) => m.type === "ack" && m.id === 8, "A ack 8");
      await sleep(100);
      assertEqual(a.inbox.items, [], "frames at the sender");
    });
    await step("100 messages arrive once each, in order, both directions", async () => {
      const sent = { a: [], b: [] };
      for (let n = 2; n < 102; n++) {
        sent.a.push(payload(0, n));
        sent.b.push(payload(1, n));
        sendJson(a, { type: "message", room: "bench", payload: sent.a.at(-1) });
        sendJson(b, { type: "message", room: "bench", payload: sent.b.at(-1) });
      }
      const gotB = [];
      const gotA = [];
      for (let i = 0; i < 100; i++) gotB.push((await b.inbox.next((m) => m.type === "message", `B message #${i}`)).payload);
      for (let i = 0; i < 100; i++) gotA.push((await a.inbox.next((m) => m.type === "message", `A message #${i}`)).payload);
      assertSeq(gotB, sent.a, "B's messages");
      assertSeq(gotA, sent.b, "A's messages");
      await sleep(100);
      assertEqual(a.inbox.items.length + b.inbox.items.length, 0, "extra frames");
    });
  } finally {
    a.ws.terminate();
    b.ws.terminate();
  }
}

if (mode === "socketio") await checkSocketIo();
else await checkWs();
console.log(`    client checks: ${passed} ok, ${failed} failing`);
process.exit(failed === 0 ? 0 : 1);
