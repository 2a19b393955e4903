"""bench/APP.md Socket.IO peer: python-socketio AsyncServer on aiohttp.

    PORT=0 python bench/peers/python/server.py     → prints "PORT <n>" once listening

Listens on 127.0.0.1:$PORT (0 = a free port), one process, one asyncio loop. Exits when stdin
closes (EOF) or on SIGTERM. Quiet: python-socketio/engine.io/aiohttp logging is off.
"""

import asyncio
import os

import socketio
from aiohttp import web

from app import register
from peer_process import announce_and_wait

sio = socketio.AsyncServer(
    async_mode="aiohttp",
    cors_allowed_origins="*",
    logger=False,
    engineio_logger=False,
)
register(sio)


async def main() -> None:
    port = int(os.environ.get("PORT") or 0)
    app = web.Application()
    sio.attach(app)

    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    real_port = runner.addresses[0][1]  # the bound (host, port) of the site's socket
    await announce_and_wait(real_port)


if __name__ == "__main__":
    asyncio.run(main())
