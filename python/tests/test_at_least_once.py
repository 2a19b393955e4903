"""At-least-once emits through the Python API: an ``AsyncClient`` with
``retries`` loses its connection (cut by a proxy the test controls) while
the server handles an event; it sends the event again, and the server's
handler still runs once per event, in order."""

from __future__ import annotations

import asyncio

import pytest

import roomcast
from helpers import Proxy, bounded

pytestmark = pytest.mark.asyncio(loop_scope="function")


@bounded(30)
async def test_retried_emits_are_handled_once_in_order_across_a_cut() -> None:
    sio = roomcast.AsyncServer()
    seen: list[int] = []
    release = asyncio.Event()

    @sio.event
    async def work(sid: str, n: int) -> int:
        seen.append(n)
        if n == 0:
            await release.wait()  # answered only after the connection was cut
        return n * 10

    port = await sio.serve("127.0.0.1", 0)
    proxy = Proxy(port)
    proxy_port = await proxy.start()
    client = roomcast.AsyncClient(reconnection_delay=0.02, reconnection_delay_max=0.05, retries=20, ack_timeout=0.15)
    try:
        await client.connect(f"http://127.0.0.1:{proxy_port}", transports=["websocket"])
        first = asyncio.ensure_future(client.call("work", 0, timeout=20))
        while not seen:
            await asyncio.sleep(0.01)
        proxy.cut()  # the answer now goes to a connection that is gone
        await asyncio.sleep(0.4)  # reconnected, and retried while the handler still runs
        release.set()
        assert await first == 0
        for n in range(1, 10):
            await client.emit("work", n)
        assert await client.call("work", 10, timeout=20) == 100
        assert seen == list(range(11)), "each event once, in order"
    finally:
        await client.disconnect()
        await proxy.close()
        await sio.shutdown()


async def test_retry_options_are_checked() -> None:
    client = roomcast.AsyncClient(retries=1, ack_timeout=0)
    with pytest.raises(roomcast.RoomcastError):
        await client.connect("http://127.0.0.1:9")
