// bench/APP.md JSON-protocol peer: Node `ws` 8 WebSocketServer at /ws with a hand-written room
// broadcast (roomcast's JSON protocol, docs/protocol-json.md, the subset APP.md uses).
//
//   PORT=0 node bench/peers/node/ws.mjs      → prints "PORT <n>" once listening
//
// Listens on 127.0.0.1:$PORT (0 = a free port). Exits when stdin closes or on SIGTERM.
// One process, no cluster, no per-message deflate. Quiet: nothing is logged unless something fails.
//
//   {"type":"join","room":R}                      → {"type":"joined","room":R}
//   {"type":"message","room":R,"payload":P}       → every other member of R gets
//       {"type":"message","room":R,"from":<id>,"userId":null,"payload":P}
//     encoded once per broadcast: the same string is sent to every member.
//   {"type":"event","event":"echo","data":D,"id":N} → {"type":"ack","id":N,"data":D}
// Also: {"type":"connected","clientId":<id>,"userId":null} on open, and `leave` → `left`.
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { WebSocketServer } from "ws";

/** room name → Set of sockets */
const rooms = new Map();

const httpServer = createServer((req, res) => {
  res.writeHead(400, { "content-type": "application/json" });
  res.end('{"error":"bad_request","message":"WebSocket upgrade expected"}');
});
const wss = new WebSocketServer({ server: httpServer, path: "/ws", perMessageDeflate: false });

function send(ws, obj) {
  ws.send(JSON.stringify(obj));
}

function sendError(ws, code, message, extra) {
  send(ws, { type: "error", code, message, ...extra });
}

/** The room of a join/leave frame, per docs/protocol-json.md §5.1. */
function roomOf(msg) {
  if ("room" in msg) return msg.room;
  if (typeof msg.payload === "string") return msg.payload;
  if (msg.payload && typeof msg.payload === "object") return msg.payload.room;
  return undefined;
}

wss.on("connection", (ws) => {
  const id = randomBytes(16).toString("base64url");
  const joined = new Set();
  send(ws, { type: "connected", clientId: id, userId: null });

  ws.on("message", (raw, isBinary) => {
    if (isBinary) return sendError(ws, "invalid_message", "binary frames are not supported");
    let msg;
    try {
      msg = JSON.parse(raw.toString());
    } catch {
      return sendError(ws, "invalid_message", "not JSON");
    }
    if (msg === null || typeof msg !== "object" || Array.isArray(msg)) {
      return sendError(ws, "invalid_message", "not a JSON object");
    }
    switch (msg.type) {
      case "join": {
        const room = roomOf(msg);
        if (typeof room !== "string" || room === "") {
          return sendError(ws, "invalid_message", "missing room");
        }
        let members = rooms.get(room);
        if (!members) rooms.set(room, (members = new Set()));
        members.add(ws);
        joined.add(room);
        return send(ws, { type: "joined", room });
      }
      case "leave": {
        const room = roomOf(msg);
        if (typeof room !== "string" || room === "") {
          return sendError(ws, "invalid_message", "missing room");
        }
        leave(ws, room);
        joined.delete(room);
        return send(ws, { type: "left", room });
      }
      case "message": {
        const room = msg.room;
        if (typeof room !== "string" || room === "") {
          return sendError(ws, "invalid_message", "missing room");
        }
        const members = rooms.get(room);
        if (!members) return;
        const payload = "payload" in msg ? msg.payload : (msg.data ?? null);
        // Encoded once; the same string goes to every other member.
        const out = JSON.stringify({ type: "message", room, from: id, userId: null, payload });
        for (const peer of members) {
          if (peer !== ws && peer.readyState === 1) peer.send(out);
        }
        return;
      }
      case "event": {
        if (msg.event === "echo" && Number.isInteger(msg.id) && msg.id >= 0) {
          return send(ws, { type: "ack", id: msg.id, data: msg.data ?? null });
        }
        return;
      }
      case "ping":
        return "data" in msg ? send(ws, { type: "pong", data: msg.data }) : send(ws, { type: "pong" });
      case "ack":
        return;
      default:
        return sendError(ws, "unknown_type", "unknown type");
    }
  });

  ws.on("close", () => {
    for (const room of joined) leave(ws, room);
    joined.clear();
  });
  ws.on("error", () => {});
});

function leave(ws, room) {
  const members = rooms.get(room);
  if (!members) return;
  members.delete(ws);
  if (members.size === 0) rooms.delete(room);
}

const exit = () => process.exit(0);
process.on("SIGTERM", exit);
process.stdin.on("end", exit);
process.stdin.on("close", exit);
process.stdin.on("error", exit);
process.stdin.resume();

httpServer.on("error", (err) => {
  console.error(`ws peer: ${err.message}`);
  process.exit(1);
});
httpServer.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stdout.write(`PORT ${httpServer.address().port}\n`);
});
