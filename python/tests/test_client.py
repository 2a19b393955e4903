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


async def test_several_namespaces_each_with_their_handlers() -> None:
    sio = roomcast.AsyncServer()
    joined: list[tuple[str, str]] = []

    @sio.event(namespace="/chat")
    async def connect(sid: str, environ: dict[str, str], auth: object) -> None:
        joined.append(("/chat", sid))

    @sio.on("where", namespace="/chat")
    async def where_chat(sid: str) -> str:
        return "chat"

    @sio.on("where")
    async def where_root(sid: str) -> str:
        return "root"

    @sio.on("where", namespace="/admin")
    async def where_admin(sid: str) -> str:
        return "admin"

    port = await sio.serve("127.0.0.1", 0)
    client = roomcast.AsyncClient(reconnection=False)
    chat_news: asyncio.Queue[object] = asyncio.Queue()
    connects: asyncio.Queue[str] = asyncio.Queue()

    @client.on("news", namespace="/chat")
    async def on_chat_news(data: object) -> None:
        await chat_news.put(data)

    @client.event(namespace="/chat")
    async def connect() -> None:
        await connects.put("/chat")

    @client.event
    async def disconnect(reason: str) -> None:
        await connects.put(f"/ left: {reason}")

    try:
        await client.connect(f"http://127.0.0.1:{port}", namespaces=["/", "/chat"])
        assert sorted(client.namespaces) == ["/", "/chat"] and client.connected
        assert await asyncio.wait_for(connects.get(), 10) == "/chat"
        chat_sid = client.get_sid("/chat")
        assert chat_sid is not None and chat_sid != client.get_sid("/") and joined == [("/chat", chat_sid)]
        assert client.sid == client.get_sid("/") and client.get_sid("/admin") is None
        assert await client.call("where", timeout=10) == "root"
        assert await client.call("where", namespace="/chat", timeout=10) == "chat"
        with pytest.raises(roomcast.ClosedError):
            await client.emit("where", namespace="/admin")
        # A room broadcast in /chat reaches the /chat handler only.
        await sio.emit("news", "for chat", namespace="/chat")
        assert await asyncio.wait_for(chat_news.get(), 10) == "for chat"
        await sio.disconnect(client.get_sid("/") or "", namespace="/")
        assert await asyncio.wait_for(connects.get(), 10) == "/ left: io server disconnect"
        assert client.namespaces == ["/chat"] and not client.connected
        # The namespaces with handlers are connected when none are named.
        other = roomcast.AsyncClient(reconnection=False)
        other.on("where", lambda: None, namespace="/admin")
        await other.connect(f"http://127.0.0.1:{port}")
        assert other.namespaces == ["/admin"]
        assert await other.call("where", namespace="/admin", timeout=10) == "admin"
        await other.disconnect()
        assert other.namespaces == [] and other.sid is None
    finally:
        await client.disconnect()
        await sio.shutdown()


async def test_a_refused_namespace_leaves_none_connected() -> None:
    sio = roomcast.AsyncServer()

    @sio.event(namespace="/private")
    async def connect(sid: str, environ: dict[str, str], auth: object) -> bool:
        return False

    port = await sio.serve("127.0.0.1", 0)
    client = roomcast.AsyncClient(reconnection=False)
    try:
        with pytest.raises(roomcast.RoomcastError):
            await client.connect(f"http://127.0.0.1:{port}", namespaces=["/", "/private"])
        assert client.namespaces == [] and not client.connected
        await client.connect(f"http://127.0.0.1:{port}", namespaces="/")
        assert client.namespaces == ["/"]
    finally:
        await client.disconnect()
        await sio.shutdown()


async def test_disconnect_runs_the_disconnect_handler_before_it_returns() -> None:
    sio = roomcast.AsyncServer()
    port = await sio.serve("127.0.0.1", 0)
    client = roomcast.AsyncClient(reconnection=False)
    reasons: list[str] = []

    @client.event
    async def disconnect(reason: str) -> None:
        await asyncio.sleep(0.05)
        reasons.append(reason)

    try:
        await client.connect(f"http://127.0.0.1:{port}")
        await client.disconnect()
        assert reasons == ["io client disconnect"]
    finally:
        await sio.shutdown()
