"""bench/APP.md Socket.IO peer for B5: the app of server.py on roomcast's
Python package (AsyncServer), everything but the handlers in Rust.

    PORT=0 python bench/peers/python/roomcast_server.py     → prints "PORT <n>" once listening
"""

import asyncio
import os

import roomcast

from peer_process import announce_and_wait

ROOM = "bench"

sio = roomcast.AsyncServer(cors_allowed_origins="*")


@sio.event
async def connect(sid, environ, auth=None):
    await sio.enter_room(sid, ROOM)


@sio.event
async def publish(sid, data):
    # publish P → msg P to room "bench" except the sender.
    await sio.emit("msg", data, room=ROOM, skip_sid=sid)


@sio.event
async def echo(sid, data):
    # echo D + ack → the ack carries D (the handler's return value is the ack).
    return data


async def main() -> None:
    port = await sio.serve("127.0.0.1", int(os.environ.get("PORT") or 0))
    await announce_and_wait(port)


if __name__ == "__main__":
    asyncio.run(main())
