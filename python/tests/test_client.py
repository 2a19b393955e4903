"""roomcast's AsyncClient against roomcast's AsyncServer."""

from __future__ import annotations

import asyncio

import pytest

import roomcast

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_client_events_acks_both_ways_and_lifecycle() -> None:
    sio = roomcast.AsyncServer()
    server_sids: list[str] = []

    @sio.event
    async def connect(sid: str, environ: dict[str, str], auth: object) -> bool:
        server_sids.append(sid)
        return auth == {"token": "t"} and environ.get("HTTP_X_APP") == "tests"

    @sio.event
    async def echo(sid: str, *args: object) -> object:
        return args

    port = await sio.serve("127.0.0.1", 0)
    client = roomcast.AsyncClient(reconnection=False)
    lifecycle: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    news: asyncio.Queue[object] = asyncio.Queue()

    @client.event
    async def connect() -> None:
        await lifecycle.put(("connect", client.sid))

    @client.event
    async def disconnect(reason: str) -> None:
        await lifecycle.put(("disconnect", reason))

    @client.on("news")
    async def on_news(data: object) -> None:
        await news.put(data)

    @client.on("question")
    def question(a: int, b: int) -> int:
        return a + b

    try:
        await client.connect(f"http://127.0.0.1:{port}", auth={"token": "t"}, headers={"X-App": "tests"})
        assert client.connected and client.sid == server_sids[0]
        assert await asyncio.wait_for(lifecycle.get(), 10) == ("connect", client.sid)
        assert await client.call("echo", (1, b"\\x00bytes", {"k": [None]}), timeout=10) == (1, b"\\x00bytes", {"k": [None]})
        await sio.emit("news", "extra", to=client.sid)
        assert await asyncio.wait_for(news.get(), 10) == "extra"
        assert await sio.call("question", (2, 3), to=client.sid, timeout=10) == 5
        await client.emit("echo", "fire and forget")
        await sio.disconnect(client.sid)
        assert await asyncio.wait_for(lifecycle.get(), 10) == ("disconnect", "io server disconnect")
        await asyncio.wait_for(client.wait(), 10)
        assert not client.connected
    finally:
        await client.disconnect()
        await sio.shutdown()


async def test_refused_connections_raise_a_roomcast_error() -> None:
    sio = roomcast.AsyncServer()

    @sio.event
    async def connect(sid: str, environ: dict[str, str], auth: object) -> None:
        raise roomcast.ConnectionRefusedError("members only")

    port = await sio.serve("127.0.0.1", 0)
    client = roomcast.AsyncClient(reconnection=False)
    errors: asyncio.Queue[object] = asyncio.Queue()
    client.on("connect_error", errors.put)
    try:
        with pytest.raises(roomcast.RoomcastError, match="members only"):
            await client.connect(f"http://127.0.0.1:{port}")
        assert (await asyncio.wait_for(errors.get(), 10))["message"] == "members only"
        with pytest.raises(roomcast.InvalidArgumentError):
            await roomcast.AsyncClient().connect(f"http://127.0.0.1:{port}", transports=["polling"])
    finally:
        await client.disconnect()
        await sio.shutdown()


async def test_emit_callbacks_get_the_ack_both_ways() -> None:
    sio = roomcast.AsyncServer()

    @sio.event
    async def double(sid: str, n: int) -> int:
        return 2 * n

    port = await sio.serve("127.0.0.1", 0)
    client = roomcast.AsyncClient(reconnection=False)

    @client.event
    async def triple(n: int) -> tuple[int, str]:
        return 3 * n, "tripled"

    acks: asyncio.Queue[tuple[object, ...]] = asyncio.Queue()
    try:
        await client.connect(f"http://127.0.0.1:{port}")
        await client.emit("double", 21, callback=lambda n: acks.put_nowait((n,)))
        assert await asyncio.wait_for(acks.get(), 10) == (42,)

        async def got(n: int, label: str) -> None:
            await acks.put((n, label))

        assert client.sid is not None
        await sio.emit("triple", 5, to=client.sid, callback=got)
        assert await asyncio.wait_for(acks.get(), 10) == (15, "tripled")
        with pytest.raises(roomcast.InvalidArgumentError):
            await sio.emit("triple", 5, room=["a", "b"], callback=got)
    finally:
        await client.disconnect()
        await sio.shutdown()
