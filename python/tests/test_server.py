"""AsyncServer against python-socketio's AsyncClient (a real client from PyPI)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import socketio

import roomcast

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def connected_client(port: int) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await asyncio.wait_for(client.connect(f"http://127.0.0.1:{port}", transports=["websocket"]), 10)
    return client


async def test_handler_return_value_is_the_ack() -> None:
    sio = roomcast.AsyncServer()
    seen: list[str] = []

    @sio.event
    async def echo(sid: str, data: object) -> object:
        seen.append(sid)
        return data

    @sio.on("pair")
    def pair(sid: str, a: int, b: int) -> tuple[int, int]:  # a plain function works too
        return b, a

    port = await sio.serve("127.0.0.1", 0)
    client = await connected_client(port)
    try:
        payload = {"n": 1, "list": [1.5, None, True], "text": "héllo", "raw": b"\x00\x01"}
        assert await client.call("echo", payload, timeout=10) == payload
        assert seen and len(seen[0]) > 10
        assert await client.call("pair", (1, 2), timeout=10) == (2, 1)
    finally:
        await client.disconnect()
        await sio.shutdown()


async def test_emit_to_everyone_a_sid_and_with_skip() -> None:
    sio = roomcast.AsyncServer()
    sids: list[str] = []

    @sio.event
    async def hello(sid: str) -> None:
        sids.append(sid)

    port = await sio.serve("127.0.0.1", 0)
    a, b = await connected_client(port), await connected_client(port)
    got: dict[str, list[object]] = {"a": [], "b": []}
    done = asyncio.Event()

    def recorder(name: str):
        async def news(data: object) -> None:
            got[name].append(data)
            if len(got["a"]) == 2 and len(got["b"]) == 1:
                done.set()

        return news

    a.on("news", recorder("a"))
    b.on("news", recorder("b"))
    try:
        await a.call("hello", timeout=10)
        sid_a = sids[0]
        await sio.emit("news", "all")
        await sio.emit("news", "only a", to=sid_a)
        await sio.emit("news", "not a", skip_sid=sid_a, to=sid_a)
        await asyncio.wait_for(done.wait(), 10)
        assert got == {"a": ["all", "only a"], "b": ["all"]}
    finally:
        await a.disconnect()
        await b.disconnect()
        await sio.shutdown()


async def test_handler_exception_is_logged_and_the_connection_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    sio = roomcast.AsyncServer()

    @sio.event
    async def boom(sid: str) -> None:
        raise ValueError("kaboom")

    @sio.event
    async def ok(sid: str) -> str:
        return "fine"

    port = await sio.serve("127.0.0.1", 0)
    client = await connected_client(port)
    try:
        with pytest.raises(socketio.exceptions.TimeoutError):
            # Socket.IO has no error acks: the failed handler's ack never comes.
            await client.call("boom", timeout=1)
        assert await client.call("ok", timeout=10) == "fine"
        assert any("kaboom" in r.getMessage() or (r.exc_info and "kaboom" in str(r.exc_info[1])) for r in caplog.records)
    finally:
        await client.disconnect()
        await sio.shutdown()


async def test_errors_map_to_the_roomcast_hierarchy() -> None:
    with pytest.raises(roomcast.InvalidArgumentError) as e:
        roomcast.AsyncServer(ping_interval=-1)
    assert isinstance(e.value, roomcast.RoomcastError)
    sio = roomcast.AsyncServer()
    with pytest.raises(TypeError):
        await sio.emit("x", object())
    port = await sio.serve("127.0.0.1", 0)
    try:
        with pytest.raises(roomcast.RoomcastIOError) as e2:
            await roomcast.AsyncServer().serve("127.0.0.1", port)
        assert e2.value.code == "ERR_IO"
    finally:
        await sio.shutdown()


async def test_rooms_calls_catch_all_and_disconnects() -> None:
    sio = roomcast.AsyncServer()
    sids: list[str] = []
    gone: asyncio.Queue[tuple[str, str, list[str]]] = asyncio.Queue()

    @sio.event
    async def hello(sid: str) -> None:
        sids.append(sid)
        await sio.enter_room(sid, "lobby")

    @sio.on("*")
    async def anything(event: str, sid: str, *args: object) -> object:
        return [event, *args]

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        # The rooms it was in are still readable here.
        await gone.put((sid, reason, sio.rooms(sid)))

    port = await sio.serve("127.0.0.1", 0)
    a, b = await connected_client(port), await connected_client(port)
    lobby: list[object] = []
    got_lobby = asyncio.Event()

    async def on_lobby(data: object) -> None:
        lobby.append(data)
        got_lobby.set()

    a.on("lobby", on_lobby)

    @b.on("question")
    async def question(x: int) -> tuple[int, str]:
        return x * 2, "twice"

    @b.on("slow")
    async def slow() -> None:
        await asyncio.sleep(5)

    try:
        await a.call("hello", timeout=10)
        await b.call("hello", timeout=10)
        sid_a, sid_b = sids
        assert sio.rooms(sid_a) == [sid_a, "lobby"]
        await sio.leave_room(sid_b, "lobby")
        await sio.emit("lobby", "welcome", room="lobby")
        await asyncio.wait_for(got_lobby.wait(), 10)
        assert lobby == ["welcome"]
        assert await a.call("unknown", 7, timeout=10) == ["unknown", 7], "the catch-all answers"
        assert await sio.call("question", 21, to=sid_b, timeout=10) == (42, "twice")
        with pytest.raises(roomcast.TimeoutError):
            await sio.call("slow", to=sid_b, timeout=0.2)
        await sio.close_room("lobby")
        assert sio.rooms(sid_a) == [sid_a]
        await sio.enter_room(sid_a, "kept")
        await sio.disconnect(sid_a)
        assert await asyncio.wait_for(gone.get(), 10) == (sid_a, "server namespace disconnect", [sid_a, "kept"])
        await b.disconnect()
        # python-socketio's client queues its DISCONNECT packet and aborts the
        # transport, so either may reach the server first.
        sid, reason, _ = await asyncio.wait_for(gone.get(), 10)
        assert sid == sid_b and reason in ("client namespace disconnect", "transport close")
        assert sio.rooms("no-such-sid") == []
    finally:
        await a.disconnect()
        await b.disconnect()
        await sio.shutdown()


async def test_connect_handler_sees_environ_and_auth_and_may_refuse() -> None:
    sio = roomcast.AsyncServer()
    seen: list[tuple[str, dict[str, str], object]] = []

    @sio.event
    async def connect(sid: str, environ: dict[str, str], auth: object) -> object:
        seen.append((sid, environ, auth))
        token = auth.get("token") if isinstance(auth, dict) else None
        if token == "nope":
            return False
        if token == "explain":
            raise roomcast.ConnectionRefusedError("not today", {"retry": False})
        await sio.enter_room(sid, "members")
        await sio.emit("welcome", "first thing after connecting", to=sid)
        return None

    port = await sio.serve("127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}?team=blue"
    try:
        for token, error in [
            ("nope", {"message": "Connection refused by server"}),
            ("explain", {"message": "not today", "data": {"retry": False}}),
        ]:
            refused = socketio.AsyncClient(reconnection=False)
            errors: list[object] = []
            refused.on("connect_error", errors.append)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await asyncio.wait_for(
                    refused.connect(url, transports=["websocket"], auth={"token": token}, headers={"X-App": "t"}), 10
                )
            assert errors == [error]
        sid, environ, auth = seen[0]
        assert auth == {"token": "nope"}
        assert "team=blue" in environ["QUERY_STRING"] and environ["HTTP_X_APP"] == "t"
        assert environ["REMOTE_ADDR"] == "127.0.0.1"

        client = socketio.AsyncClient(reconnection=False)
        welcome: asyncio.Queue[object] = asyncio.Queue()
        client.on("welcome", welcome.put)
        await asyncio.wait_for(client.connect(url, transports=["websocket"], auth={"token": "ok"}), 10)
        assert await asyncio.wait_for(welcome.get(), 10) == "first thing after connecting"
        assert sio.rooms(seen[-1][0]) == [seen[-1][0], "members"]
        await client.disconnect()
    finally:
        await sio.shutdown()


async def test_json_protocol_clients_reach_the_same_handlers() -> None:
    import aiohttp

    sio = roomcast.AsyncServer()

    @sio.event
    async def echo(sid: str, data: object) -> object:
        return {"from": "python", "data": data}

    port = await sio.serve("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{port}/ws") as ws:
            hello = await asyncio.wait_for(ws.receive_json(), 10)
            assert hello["type"] == "connected"
            await ws.send_json({"type": "event", "event": "echo", "data": [1, "two"], "id": 7})
            ack = await asyncio.wait_for(ws.receive_json(), 10)
            assert ack == {"type": "ack", "id": 7, "data": {"from": "python", "data": [1, "two"]}}
            await sio.send("hi everyone")
            message = await asyncio.wait_for(ws.receive_json(), 10)
            assert (message["event"], message["data"]) == ("message", "hi everyone")
    finally:
        await sio.shutdown()


async def test_start_and_stop_leave_no_threads_fds_or_memory_behind() -> None:
    import os

    def threads() -> int:  # native ones too: the Rust runtime's
        return len(os.listdir("/proc/self/task"))

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    def rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    async def cycle() -> None:
        sio = roomcast.AsyncServer()

        @sio.event
        async def echo(sid: str, data: object) -> object:
            return data

        port = await sio.serve("127.0.0.1", 0)
        client = await connected_client(port)
        assert await client.call("echo", 1, timeout=10) == 1
        await client.disconnect()
        await sio.shutdown()

    # The runtime's threads start on first use; allocators and caches settle.
    for _ in range(CYCLES_WARM):
        await cycle()
    before = threads(), fds(), rss()
    for _ in range(CYCLES):
        await cycle()
    await asyncio.sleep(0.2)
    after = threads(), fds(), rss()
    assert after[0] <= before[0], f"{after[0]} threads after, {before[0]} before"
    assert after[1] <= before[1] + 2, f"{after[1]} open fds after, {before[1]} before"
    # A server's state is some hundreds of KiB; leaking it per cycle would show.
    grown = after[2] - before[2]
    assert grown < CYCLES * 16 * 1024, f"RSS grew {grown / 1024:.0f} KiB over {CYCLES} cycles"


CYCLES_WARM, CYCLES = 10, 100


async def test_every_exported_error_is_a_roomcast_error() -> None:
    errors = [getattr(roomcast, name) for name in roomcast.__all__ if name.endswith("Error")]
    assert len(errors) == 15
    assert all(issubclass(e, roomcast.RoomcastError) for e in errors)
    assert issubclass(roomcast.ConnectionRefusedError, roomcast.RefusedError)


async def test_sessions_live_as_long_as_the_connection() -> None:
    sio = roomcast.AsyncServer()
    at_disconnect: asyncio.Queue[object] = asyncio.Queue()

    class Tracker:
        """Sessions hold any Python object, not only JSON."""

    @sio.event
    async def connect(sid: str, environ: dict[str, str], auth: object) -> None:
        await sio.save_session(sid, {"user": "ada", "tracker": Tracker()})

    @sio.event
    async def visit(sid: str) -> int:
        async with sio.session(sid) as session:
            session["visits"] = session.get("visits", 0) + 1
            assert isinstance(session["tracker"], Tracker)
            return int(session["visits"])

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        await at_disconnect.put((await sio.get_session(sid))["visits"])

    port = await sio.serve("127.0.0.1", 0)
    client = await connected_client(port)
    try:
        assert [await client.call("visit", timeout=10) for _ in range(3)] == [1, 2, 3]
        await client.disconnect()
        assert await asyncio.wait_for(at_disconnect.get(), 10) == 3, "the session is there in disconnect"
        with pytest.raises(roomcast.NotFoundError):
            await sio.get_session("no-such-sid")
    finally:
        await sio.shutdown()


async def test_a_burst_of_events_is_answered_in_full() -> None:
    sio = roomcast.AsyncServer()

    @sio.event
    async def square(sid: str, n: int) -> int:
        await asyncio.sleep(0)  # handlers interleave on the loop
        return n * n

    port = await sio.serve("127.0.0.1", 0)
    clients = [await connected_client(port) for _ in range(4)]
    try:
        calls = [c.call("square", n, timeout=20) for n in range(100) for c in clients]
        results = await asyncio.gather(*calls)
        assert results == [n * n for n in range(100) for _ in clients]
    finally:
        for c in clients:
            await c.disconnect()
        await sio.shutdown()


async def test_disconnect_with_close_ends_every_namespace_of_the_connection() -> None:
    sio = roomcast.AsyncServer()
    gone: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    sids: dict[str, str] = {}
    for namespace in ("/", "/chat"):

        async def connect(sid: str, environ: dict[str, str], auth: object, ns: str = namespace) -> None:
            sids[ns] = sid

        async def disconnect(sid: str, reason: str, ns: str = namespace) -> None:
            await gone.put((ns, reason))

        sio.on("connect", connect, namespace=namespace)
        sio.on("disconnect", disconnect, namespace=namespace)
    port = await sio.serve("127.0.0.1", 0)
    # python-socketio's client multiplexes both namespaces over one connection.
    client = socketio.AsyncClient(reconnection=False)
    try:
        await asyncio.wait_for(
            client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], namespaces=["/", "/chat"]), 10
        )
        await sio.disconnect(sids["/chat"], namespace="/chat", close=True)
        reasons = sorted([await asyncio.wait_for(gone.get(), 10), await asyncio.wait_for(gone.get(), 10)])
        assert reasons == [("/", "server namespace disconnect"), ("/chat", "server namespace disconnect")]
        await asyncio.wait_for(client.wait(), 10)
        assert not client.connected
    finally:
        await client.disconnect()
        await sio.shutdown()


async def test_connection_limits_refuse_with_429_and_the_admitted_go_on() -> None:
    sio = roomcast.AsyncServer(connection_rate_per_ip=0.01, connection_burst_per_ip=2, max_connections_per_ip=5)

    @sio.event
    async def echo(sid: str, data: object) -> object:
        return data

    port = await sio.serve("127.0.0.1", 0)
    a, b = await connected_client(port), await connected_client(port)
    session = aiohttp.ClientSession()  # closed here: a refused client leaves its own open
    refused = socketio.AsyncClient(reconnection=False, http_session=session)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await asyncio.wait_for(refused.connect(f"http://127.0.0.1:{port}", transports=["websocket"]), 10)
        assert sio.stats()["refused_connections"] == 1
        assert await a.call("echo", 1, timeout=10) == 1
        assert await b.call("echo", 2, timeout=10) == 2
    finally:
        await session.close()
        await a.disconnect()
        await b.disconnect()
        await sio.shutdown()
    with pytest.raises(roomcast.ConfigError):
        roomcast.AsyncServer(connection_rate_per_ip=0.0)
