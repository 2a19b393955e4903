"""Backpressure through the Python API: a client that stops reading (behind a
proxy the test pauses) shows up in ``buffered_amount``, ``drained`` waits for
it to catch up, volatile emits are dropped for it, and the overflow policy
decides what happens to the rest."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import roomcast
from helpers import Proxy, bounded

pytestmark = pytest.mark.asyncio(loop_scope="function")

BLOB = "x" * 32 * 1024


async def stalled_client(sio: roomcast.AsyncServer, got: list[Any]) -> tuple[roomcast.AsyncClient, Proxy, asyncio.Event]:
    """A roomcast client connected through a paused proxy: it stops reading."""
    port = await sio.serve("127.0.0.1", 0)
    proxy = Proxy(port)
    proxy_port = await proxy.start()
    client = roomcast.AsyncClient(reconnection=False)
    end = asyncio.Event()

    @client.on("msg")
    async def on_msg(data: Any) -> None:
        got.append(data["i"])

    @client.on("end")
    async def on_end() -> None:
        end.set()

    await client.connect(f"http://127.0.0.1:{proxy_port}", transports=["websocket"])
    proxy.pause()
    return client, proxy, end


@bounded(30)
async def test_buffered_amount_drained_and_the_drop_policy() -> None:
    sio = roomcast.AsyncServer(outbound_queue_messages=64, outbound_queue_bytes=256 * 1024, overflow="drop")
    disconnects: list[str] = []

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        disconnects.append(reason)

    got: list[int] = []
    client, proxy, end = await stalled_client(sio, got)
    sid = client.sid
    assert sid is not None
    try:
        # Enough to fill the kernel's socket buffers too, at their largest. An
        # emit can be dropped while the kernel still has room (the writer had
        # not caught up yet), so go on until the queue itself holds data.
        i = 0
        while i < 1000 or sio.stats()["dropped"] == 0 or sio.buffered_amount(sid) <= 128 * 1024:
            await sio.emit("msg", {"i": i, "blob": BLOB}, to=sid)
            await asyncio.sleep(0)
            i += 1
        assert sio.buffered_amount(sid) > 128 * 1024
        drained = asyncio.ensure_future(sio.drained(sid))
        await asyncio.sleep(0.1)
        # Not before the client read it (unless the kernel's buffers took it meanwhile).
        assert drained.done() == (sio.buffered_amount(sid) == 0), "drained only once nothing is buffered"
        proxy.resume()
        await drained
        assert sio.buffered_amount(sid) == 0
        await sio.emit("end", to=sid)
        await end.wait()
        assert got == sorted(got) and 0 < len(got) < 1000, "some dropped, the rest in order"
        assert disconnects == [] and client.connected, "the drop policy keeps the client"
        with pytest.raises(roomcast.NotFoundError):
            sio.buffered_amount("nobody")
        with pytest.raises(roomcast.NotFoundError):
            await sio.drained("nobody")
    finally:
        await client.disconnect()
        await proxy.close()
        await sio.shutdown()


@bounded(30)
async def test_volatile_emits_are_dropped_and_the_close_policy_disconnects() -> None:
    sio = roomcast.AsyncServer(outbound_queue_messages=64, outbound_queue_bytes=256 * 1024)
    disconnected = asyncio.Event()

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        disconnected.set()

    got: list[int] = []
    client, proxy, _ = await stalled_client(sio, got)
    sid = client.sid
    try:
        for i in range(1000):
            await sio.emit("msg", {"i": i, "blob": BLOB}, to=sid, volatile=True)
            await asyncio.sleep(0)
        while sio.stats()["dropped"] == 0:
            await asyncio.sleep(0.01)
        assert not disconnected.is_set(), "volatile emits are dropped, the client stays"
        for i in range(1000):
            await sio.emit("msg", {"i": i, "blob": BLOB}, to=sid)
            await asyncio.sleep(0)
            if disconnected.is_set():
                break
        await disconnected.wait()
        assert sio.stats()["slow_consumer_closes"] == 1
        with pytest.raises(roomcast.InvalidArgumentError):
            await sio.emit("msg", 1, to=sid, volatile=True, callback=lambda *a: None)
    finally:
        await client.disconnect()
        await proxy.close()
        await sio.shutdown()


async def test_the_overflow_policy_is_checked() -> None:
    with pytest.raises(roomcast.InvalidArgumentError):
        roomcast.AsyncServer(overflow="ignore")
