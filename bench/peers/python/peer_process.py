"""The peer process contract of bench/APP.md, shared by the Python peers:
print "PORT <n>" once listening, exit when stdin closes (EOF) or on SIGTERM."""

import asyncio
import os
import signal
import sys


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


async def announce_and_wait(port: int) -> None:
    """Announce `port`, then wait for the orchestrator's stop and leave at once."""
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    stdin_task = asyncio.create_task(wait_for_stdin_eof(stop))
    await stop.wait()
    stdin_task.cancel()
    # Open connections would keep a graceful cleanup waiting: just leave.
    os._exit(0)
