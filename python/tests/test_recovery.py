"""Connection state recovery through the Python API: a roomcast client whose
TCP connection is cut (by a proxy the test controls) reconnects, recovers
its session, and its handlers get exactly the events it missed, in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import roomcast
from helpers import Proxy, bounded

pytestmark = pytest.mark.asyncio(loop_scope="function")


@bounded(30)
async def test_a_cut_client_recovers_its_session_and_the_missed_events() -> None:
    sio = roomcast.AsyncServer(connection_state_recovery={"max_disconnection_duration": 30})
    recovered: list[bool] = []

    @sio.event
    async def connect(sid: str, environ: dict[str, str], auth: Any) -> None:
        recovered.append(sio.recovered(sid))
        if not sio.recovered(sid):
            await sio.enter_room(sid, "r")

    port = await sio.serve("127.0.0.1", 0)
    proxy = Proxy(port)
    proxy_port = await proxy.start()
    client = roomcast.AsyncClient(reconnection_delay=0.05, reconnection_delay_max=0.1)
    got: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    @client.on("n")
    async def on_n(*args: Any) -> None:
        await got.put(args)

    try:
        await client.connect(f"http://127.0.0.1:{proxy_port}", transports=["websocket"])
        sid = client.sid
        assert not client.recovered()
        await sio.emit("n", 0, to="r")
        assert await got.get() == (0,), "the offset is taken off the arguments"
        proxy.cut()
        while sio.rooms(sid):  # the server noticed
            await asyncio.sleep(0.01)
        for n in range(1, 4):
            await sio.emit("n", n, to="r")
        assert [await got.get() for _ in range(3)] == [(1,), (2,), (3,)]
        assert client.recovered() and client.sid == sid
        assert recovered == [False, True]
        assert "r" in sio.rooms(sid)
    finally:
        await client.disconnect()
        await proxy.close()
        await sio.shutdown()


async def test_recovery_options_are_checked() -> None:
    with pytest.raises(roomcast.InvalidArgumentError):
        roomcast.AsyncServer(connection_state_recovery={"max_disconnection": 1})
    with pytest.raises(roomcast.InvalidArgumentError):
        roomcast.AsyncServer(connection_state_recovery="yes")  # type: ignore[arg-type]
    with pytest.raises(roomcast.RoomcastError):
        roomcast.AsyncServer(connection_state_recovery={"max_disconnection_duration": 0})


@bounded(30)
async def test_with_skip_middlewares_the_connect_handler_is_not_run_again() -> None:
    sio = roomcast.AsyncServer(connection_state_recovery={"skip_middlewares": True})
    connects: list[str] = []

    @sio.event
    async def connect(sid: str, environ: dict[str, str], auth: Any) -> None:
        connects.append(sid)

    port = await sio.serve("127.0.0.1", 0)
    proxy = Proxy(port)
    proxy_port = await proxy.start()
    client = roomcast.AsyncClient(reconnection_delay=0.05, reconnection_delay_max=0.1)
    reconnected = asyncio.Event()

    @client.event
    async def connect() -> None:  # noqa: F811 (the client's own handler)
        if client.recovered():
            reconnected.set()

    try:
        await client.connect(f"http://127.0.0.1:{proxy_port}", transports=["websocket"])
        proxy.cut()
        await reconnected.wait()
        assert connects == [client.sid]
    finally:
        await client.disconnect()
        await proxy.close()
        await sio.shutdown()
