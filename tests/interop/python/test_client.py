"""python-socketio 5.x AsyncClient against a roomcast server.

Run by core/tests/interop.rs, which hosts the server and its handlers (the
same app as the socket.io-client suite in ../node/client.test.mjs) at
ROOMCAST_URL and picks the transports with ROOMCAST_TRANSPORTS.
"""

import asyncio
import os

import pytest
import socketio
from socketio.exceptions import ConnectionError as SioConnectionError
from socketio.exceptions import TimeoutError as SioTimeoutError

URL = os.environ["ROOMCAST_URL"]
TRANSPORTS = os.environ.get("ROOMCAST_TRANSPORTS", "polling,websocket").split(",")
# Upper bound for any single wait.
WAIT = 5.0
SERVER_DISCONNECT = socketio.AsyncClient.reason.SERVER_DISCONNECT


@pytest.fixture
async def make_client():
    """Create AsyncClients with a short reconnection delay; stop them all at the end."""
    clients = []

    def make(**kwargs):
        opts = dict(reconnection_delay=0.1, reconnection_delay_max=0.3, randomization_factor=0.05)
        opts.update(kwargs)
        sio = socketio.AsyncClient(**opts)
        clients.append(sio)
        return sio

    yield make
    for sio in clients:
        try:
            await asyncio.wait_for(sio.shutdown(), WAIT)
        except Exception as exc:  # noqa: BLE001 - cleanup must reach every client
            print(f"cleanup: {exc!r}")


async def connect(sio, namespace="/", auth=None):
    namespaces = namespace if isinstance(namespace, list) else [namespace]
    await asyncio.wait_for(
        sio.connect(URL, transports=TRANSPORTS, namespaces=namespaces, auth=auth, wait_timeout=WAIT),
        WAIT + 1,
    )
    return sio


@pytest.fixture
async def connected(make_client):
    """A connected client on `/` (or the namespaces asked for)."""

    async def connected_client(namespace="/", auth=None, **kwargs):
        return await connect(make_client(**kwargs), namespace, auth)

    return connected_client


def expect(sio, event, namespace="/"):
    """A future resolved with the arguments of the next `event`."""
    fut = asyncio.get_running_loop().create_future()

    def handler(*args):
        if not fut.done():
            fut.set_result(args)

    sio.on(event, handler, namespace=namespace)
    return fut


async def within(awaitable):
    return await asyncio.wait_for(awaitable, WAIT)


def expected_transport():
    return "websocket" if TRANSPORTS == ["websocket"] else "polling" if TRANSPORTS == ["polling"] else None


async def test_connects_gets_a_welcome_and_a_sid(make_client):
    sio = make_client()
    welcome = expect(sio, "welcome")
    await connect(sio)
    (payload,) = await within(welcome)
    # sio.sid is the Engine.IO session id; the Socket.IO socket id (the one
    # the server's handlers see) is per namespace, from the CONNECT packet.
    assert sio.get_sid("/") is not None
    assert payload == {"id": sio.get_sid("/")}
    assert sio.sid is not None
    assert sio.connected
    if expected_transport():
        assert sio.transport() == expected_transport()


async def test_events_and_acks_with_several_arguments(connected):
    sio = await connected()
    # call() returns a tuple for several ack arguments, the value for one, None for none.
    assert await sio.call("echo", (1, "two", {"three": [3]}), timeout=WAIT) == (1, "two", {"three": [3]})
    assert await sio.call("echo", "first only", timeout=WAIT) == "first only"
    # A list is one argument; a tuple is several.
    assert await sio.call("echo", [1, "two"], timeout=WAIT) == [1, "two"]
    assert await sio.call("echo", timeout=WAIT) is None
    assert await sio.call("echo", (None, True, 1.5, "é ✓"), timeout=WAIT) == (None, True, 1.5, "é ✓")


async def test_server_to_client_ack_and_server_side_timeout(connected):
    sio = await connected()
    sio.on("question", lambda q: f"answer to {q}")
    assert await sio.call("ask", "life", timeout=WAIT) == "answer to life"
    # A tuple returned by the handler acks with several arguments.
    sio.on("question", lambda q: (q, 2))
    assert await sio.call("ask", "pair", timeout=WAIT) == ("pair", 2)

    # python-socketio always acks an event that asks for one (with no
    # arguments when the handler returns None), so "never acks" here means
    # "acks after the server's 200 ms timeout". The late ack must be ignored.
    async def slow(q):
        await asyncio.sleep(0.5)
        return "too late"

    sio.on("question", slow)
    assert await sio.call("ask", "void", timeout=WAIT) == "timeout"
    await asyncio.sleep(0.5)  # the late ack reaches the server
    assert sio.connected
    assert await sio.call("echo", "still here", timeout=WAIT) == "still here"


async def test_client_side_ack_timeout(connected):
    sio = await connected()
    with pytest.raises(SioTimeoutError):
        await sio.call("never_acks", timeout=0.1)
    assert await sio.call("echo", "after timeout", timeout=WAIT) == "after timeout"


async def test_binary_both_ways(connected):
    sio = await connected()
    blob = bytes([0, 1, 2, 250, 255])
    back, meta = await sio.call("binary", (blob, {"name": "f.bin", "nested": [b"x"]}), timeout=WAIT)
    assert back == blob
    assert meta == {"name": "f.bin", "nested": [b"x"]}
    pushed = expect(sio, "blob")
    await sio.emit("send_blob")
    assert await within(pushed) == (b"\x01\x02\x03",)
    # Binary in acks both ways: the client acks the server's question with bytes,
    # and the server acks `ask` with them.
    sio.on("question", lambda q: bytes([q, 0, 255]))
    assert await sio.call("ask", 7, timeout=WAIT) == bytes([7, 0, 255])


async def test_rooms_broadcast_reaches_members_only(connected):
    a, b, c = await asyncio.gather(connected(), connected(), connected())
    assert await a.call("join", "r1", timeout=WAIT) == "ok"
    assert await b.call("join", "r1", timeout=WAIT) == "ok"
    got_a, got_b = expect(a, "room_msg"), expect(b, "room_msg")
    got_c = []
    c.on("room_msg", lambda *args: got_c.append(args))
    await a.call("to_room", ("r1", {"hi": 1}), timeout=WAIT)
    assert await within(got_b) == ({"hi": 1},)
    # A server-wide room broadcast includes the member that asked for it.
    assert await within(got_a) == ({"hi": 1},)
    await asyncio.sleep(0.1)
    assert got_c == []


async def test_namespace_with_auth(connected):
    admin = await connected("/admin", auth={"token": "secret"})
    assert admin.get_sid("/admin") is not None
    assert admin.get_sid("/") is None
    assert await admin.call("whoami", namespace="/admin", timeout=WAIT) == "/admin"


async def test_namespace_refused_with_message_and_data(make_client):
    sio = make_client()
    error = expect(sio, "connect_error", namespace="/admin")
    with pytest.raises(SioConnectionError) as exc:
        await connect(sio, "/admin", auth={"token": "wrong"})
    assert "/admin" in str(exc.value)
    # The CONNECT_ERROR payload reaches the namespace's connect_error handler as one dict.
    assert await within(error) == ({"message": "not authorized", "data": {"code": 42}},)
    assert not sio.connected


async def test_unknown_namespace_refused(make_client):
    sio = make_client()
    error = expect(sio, "connect_error", namespace="/nope")
    with pytest.raises(SioConnectionError) as exc:
        await connect(sio, "/nope")
    assert "/nope" in str(exc.value)
    assert await within(error) == ({"message": "Invalid namespace"},)


async def test_two_namespaces_on_one_connection(connected):
    sio = await connected(["/", "/admin"], auth={"token": "secret"})
    assert sio.get_sid("/") is not None and sio.get_sid("/admin") is not None
    assert sio.get_sid("/") != sio.get_sid("/admin")
    assert await sio.call("whoami", namespace="/admin", timeout=WAIT) == "/admin"
    assert await sio.call("echo", "root", timeout=WAIT) == "root"
    # A server-side disconnect leaves that namespace only.
    left = expect(sio, "disconnect")
    await sio.emit("disconnect_me")
    assert await within(left) == (SERVER_DISCONNECT,)
    assert sio.get_sid("/") is None
    assert await sio.call("whoami", namespace="/admin", timeout=WAIT) == "/admin"


async def test_server_side_disconnect_is_reported_and_not_retried(connected):
    connects = []
    sio = await connected()
    sio.on("connect", lambda: connects.append(1))
    reason = expect(sio, "disconnect")
    await sio.emit("disconnect_me")
    assert await within(reason) == (SERVER_DISCONNECT,)
    # Several reconnection delays later, still disconnected and no attempt made.
    await asyncio.sleep(0.8)
    assert connects == []
    assert not sio.connected
    assert sio.eio.state == "disconnected"


async def test_mixed_room_reaches_socketio_and_json_clients(connected):
    # The Rust harness checks that its JSON-protocol client in "mixed" got it too.
    sio = await connected()
    assert await sio.call("join", "mixed", timeout=WAIT) == "ok"
    got = expect(sio, "room_msg")
    await sio.call("to_room", ("mixed", "to everyone"), timeout=WAIT)
    assert await within(got) == ("to everyone",)


async def test_reconnects_after_a_server_restart(make_client):
    sio = make_client()
    connects = asyncio.Queue()
    sio.on("connect", lambda: connects.put_nowait(1))
    disconnects = asyncio.Queue()
    sio.on("disconnect", lambda reason: disconnects.put_nowait(reason))
    await connect(sio)
    await within(connects.get())
    first_sid = sio.get_sid("/")
    await sio.emit("restart_server")
    reason = await within(disconnects.get())
    if reason == SERVER_DISCONNECT and "websocket" not in TRANSPORTS:
        # Over polling the server's shutdown answers the pending GET with an
        # Engine.IO CLOSE packet ("1"), exactly as socket.io's own server does
        # (engine.io polling doClose). python-engineio takes a CLOSE from the
        # server as a deliberate disconnect and, unlike socket.io-client, never
        # retries it (eio.state is already "disconnecting" when python-socketio
        # decides). So reconnect explicitly; retry=True rides out the restart.
        assert sio.eio.state == "disconnected"
        await asyncio.wait_for(
            sio.connect(URL, transports=TRANSPORTS, namespaces=["/"], wait_timeout=WAIT, retry=True), 10
        )
    else:
        # The transport just drops (WebSocket close 1001): the client
        # reconnects by itself once the server is back on the same port.
        assert reason == socketio.AsyncClient.reason.TRANSPORT_ERROR
    await asyncio.wait_for(connects.get(), 10)
    assert sio.get_sid("/") not in (None, first_sid)
    assert await sio.call("echo", "back", timeout=WAIT) == "back"
