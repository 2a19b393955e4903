"""bench/APP.md Socket.IO peer: python-socketio AsyncServer on aiohttp.

    PORT=0 python bench/peers/python/server.py     → prints "PORT <n>" once listening

Listens on 127.0.0.1:$PORT (0 = a free port), one process, one asyncio loop. Exits when stdin
closes (EOF) or on SIGTERM. Quiet: python-socketio/engine.io/aiohttp logging is off.
"""

import asyncio
import os
import signal
import sys

import socketio
from aiohttp import web

ROOM = "bench"

sio = socketio.AsyncServer(
    async_mode="aiohttp",
    cors_allowed_origins="*",
    logger=False,
    engineio_logger=False,
)


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


async def wait_for_stdin_eof(stop: asyncio.Event) -> None:
    """Set `stop` when stdin reaches EOF (the orchestrator's stop signal)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
        )
    except (ValueError, OSError):
        # stdin is not a pipe/tty the loop can watch (e.g. a regular file): read it in a thread.
        await asyncio.to_thread(sys.stdin.buffer.read)
        stop.set()
        return
    try:
        while await reader.read(4096):
            pass
    finally:
        stop.set()


async def main() -> None:
    port = int(os.environ.get("PORT") or 0)
    app = web.Application()
    sio.attach(app)

    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    real_port = runner.addresses[0][1]  # the bound (host, port) of the site's socket
    sys.stdout.write(f"PORT {real_port}\n")
    sys.stdout.flush()

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    stdin_task = asyncio.create_task(wait_for_stdin_eof(stop))
    await stop.wait()
    stdin_task.cancel()
    # Open WebSocket connections would keep a graceful cleanup waiting: just leave.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
