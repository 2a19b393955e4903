"""bench/APP.md Socket.IO peer for B5: the app of server.py on roomcast's
Python package (AsyncServer), everything but the handlers in Rust.

    PORT=0 python bench/peers/python/roomcast_server.py     → prints "PORT <n>" once listening
"""

import asyncio
import os

import roomcast

from app import register
from peer_process import announce_and_wait

sio = roomcast.AsyncServer(cors_allowed_origins="*")
register(sio)


async def main() -> None:
    port = await sio.serve("127.0.0.1", int(os.environ.get("PORT") or 0))
    await announce_and_wait(port)


if __name__ == "__main__":
    asyncio.run(main())
