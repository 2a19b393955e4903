"""Chat with rooms and presence on roomcast, the python-socketio way.

Run it (after `make wheel` and `pip install` of the wheel):

    python examples/python/chat.py            # serves on 127.0.0.1:5000

Clients (socket.io-client, python-socketio) connect with auth {name}, which
names their user, and emit `join` {room}, `say` {room, text}, `leave`
{room}, `typing` {room}, `status` {status} ("online", "away", "busy") and
`who` {room} (acked with its members, [{name, status}] by name); everyone in the room gets
`joined`, `said` and `left`, the others `typing` {room, name}, and presence's `presence:join` / `presence:leave` /
`presence:update` (a member per user).
"""

from __future__ import annotations

from typing import Any

import roomcast


def create_server() -> roomcast.AsyncServer:
    sio = roomcast.AsyncServer()
    sio.enable_presence()
    names: dict[str, str] = {}

    @sio.event
    async def connect(sid: str, environ: dict[str, str], auth: Any) -> bool:
        name = auth.get("name") if isinstance(auth, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise roomcast.ConnectionRefusedError("pick a name first")
        names[sid] = name.strip()[:32]
        sio.set_user_id(sid, names[sid])
        return True

    @sio.event
    async def join(sid: str, data: dict[str, str]) -> dict[str, Any]:
        room = data["room"]
        await sio.enter_room(sid, room)
        await sio.emit("joined", {"room": room, "name": names[sid]}, room=room, skip_sid=sid)
        # Not the socket's own room, nor its user's (``user:<name>``).
        return {"ok": True, "rooms": [r for r in sio.rooms(sid) if r != sid and not r.startswith("user:")]}

    @sio.event
    async def say(sid: str, data: dict[str, str]) -> bool:
        room = data["room"]
        if room not in sio.rooms(sid):
            return False
        await sio.emit("said", {"room": room, "name": names[sid], "text": data["text"]}, room=room)
        return True

    @sio.event
    async def leave(sid: str, data: dict[str, str]) -> None:
        await sio.leave_room(sid, data["room"])
        await sio.emit("left", {"room": data["room"], "name": names[sid]}, room=data["room"])

    @sio.event
    async def typing(sid: str, data: dict[str, str]) -> None:
        room = data["room"]
        if room in sio.rooms(sid):
            await sio.emit("typing", {"room": room, "name": names[sid]}, room=room, skip_sid=sid, volatile=True)

    @sio.event
    async def status(sid: str, data: dict[str, str]) -> bool:
        try:
            sio.set_presence(sid, {"status": data["status"]})
        except roomcast.InvalidArgumentError:
            return False  # not online, away or busy
        return True

    @sio.event
    async def who(sid: str, data: dict[str, str]) -> list[dict[str, Any]]:
        members = sorted(await sio.presence(data["room"]), key=lambda m: m["userId"])
        return [{"name": m["userId"], "status": m["meta"]["status"]} for m in members]

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        names.pop(sid, None)

    return sio


if __name__ == "__main__":
    create_server().run("127.0.0.1", 5000)
