"""Presence and the Redis cluster, with python-socketio's AsyncClient (a real
client from PyPI) and redis-servers the tests start themselves (the
``redis_url`` fixture of conftest.py)."""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from typing import Any

import pytest

import roomcast
from conftest import RedisServer
from helpers import ClientPeer, NodeProcess, bounded, name_users_from_auth, new_channel

pytestmark = pytest.mark.asyncio(loop_scope="function")

PRESENCE_EVENTS = ("presence:join", "presence:leave", "presence:update")


class Peer(ClientPeer):
    """A python-socketio client whose presence events land in a queue."""

    def __init__(self) -> None:
        super().__init__()
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.news: list[object] = []
        self.got_news = asyncio.Event()
        for name in PRESENCE_EVENTS:
            self.client.on(name, functools.partial(self._presence, name))
        self.client.on("news", self._news)

    async def _presence(self, name: str, data: dict[str, Any]) -> None:
        await self.events.put((name, data))

    async def _news(self, data: object) -> None:
        self.news.append(data)
        self.got_news.set()

    async def connect(self, port: int, user: str | None) -> Peer:
        await self._connect(port, auth={"user": user} if user else {})
        return self

    async def enter(self, room: str) -> Any:
        return await self.client.call("enter", room, timeout=10)

    async def next(self, name: str, timeout: float = 10) -> dict[str, Any]:
        """The next presence event, which must be ``name``."""
        got, data = await asyncio.wait_for(self.events.get(), timeout)
        assert got == name, f"expected {name}, got {got} {data}"
        return data

    async def quiet(self, wait: float = 0.3) -> None:
        """No presence event comes within ``wait`` seconds."""
        await asyncio.sleep(wait)
        assert self.events.empty(), f"unexpected {self.events.get_nowait()}"


def presence_server(**kwargs: Any) -> roomcast.AsyncServer:
    """A server naming each client's user from ``auth["user"]``, with an
    ``enter`` event that puts the client in a room."""
    sio = roomcast.AsyncServer(**kwargs)
    name_users_from_auth(sio)

    @sio.event
    async def enter(sid: str, room: str) -> object:
        await sio.enter_room(sid, room)
        try:
            sio.set_user_id(sid, "late")  # only while the connect handler runs
        except roomcast.RoomcastError as e:
            return e.code
        return "set"

    @sio.event
    async def status(sid: str, meta: object) -> str:
        try:
            sio.set_presence(sid, meta)  # type: ignore[arg-type]
        except roomcast.RoomcastError as e:
            return e.code
        return "ok"

    return sio


@bounded(60)
async def test_presence_on_one_node() -> None:
    sio = presence_server()
    sio.enable_presence("lobby")
    assert sio.node_id is None
    port = await sio.serve("127.0.0.1", 0)
    bob, alice1, alice2, nameless = Peer(), Peer(), Peer(), Peer()
    try:
        await bob.connect(port, "bob")
        assert await bob.enter("lobby") == "ERR_INVALID_ARGUMENT", "a user id is set in connect only"
        await alice1.connect(port, "alice")
        await alice1.enter("lobby")
        join = await bob.next("presence:join")
        assert (join["room"], join["userId"], join["connections"]) == ("lobby", "alice", 1)
        assert join["meta"] == {"status": "online"} and join["joinedAt"] <= join["lastSeen"]
        await alice1.quiet()  # the socket that entered is not told
        await alice2.connect(port, "alice")
        await alice2.enter("lobby")
        await bob.quiet()  # a second tab of a member: no event
        members = sorted(await sio.presence("lobby"), key=lambda m: str(m["userId"]))
        assert [(m["userId"], m["connections"]) for m in members] == [("alice", 2), ("bob", 1)]
        assert set(members[0]) == {"userId", "connections", "meta", "joinedAt", "lastSeen"}
        assert await sio.presence_count("lobby") == 2
        assert await sio.presence("elsewhere") == [], "rooms without presence have no members"

        # A client without a user id is a member of its own.
        await nameless.connect(port, None)
        await nameless.enter("lobby")
        anonymous, nameless_sid = await bob.next("presence:join"), nameless.sid
        assert (anonymous["userId"], anonymous["anonymous"]) == (nameless_sid, True)
        assert sio.get_user_id(nameless_sid) is None and sio.get_user_id(bob.sid) == "bob"
        await nameless.close()
        assert (await bob.next("presence:leave"))["userId"] == nameless_sid
        for peer in (alice1, alice2):
            assert (await peer.next("presence:join"))["userId"] == nameless_sid
            assert (await peer.next("presence:leave"))["userId"] == nameless_sid

        # A user's connections share the room user:<id>.
        await sio.emit("news", "for alice", room="user:alice")
        await asyncio.wait_for(asyncio.gather(alice1.got_news.wait(), alice2.got_news.wait()), 10)
        assert (alice1.news, alice2.news, bob.news) == (["for alice"], ["for alice"], [])
        assert await sio.is_online("alice") and not await sio.is_online("zed")
        assert await sio.online_users(["bob", "zed"]) == {"bob": True, "zed": False}

        # Presence metadata, from a handler and from the server.
        assert await bob.client.call("status", {"status": "away", "mood": "ok"}, timeout=10) == "ok"
        for peer in (alice1, alice2, bob):  # the whole room, the member itself too
            update = await peer.next("presence:update")
            assert (update["userId"], update["meta"]) == ("bob", {"status": "away", "mood": "ok"})
        assert sio.get_presence(bob.sid) == {"status": "away", "mood": "ok"}
        assert await bob.client.call("status", {"status": "asleep"}, timeout=10) == "ERR_INVALID_ARGUMENT"
        with pytest.raises(roomcast.InvalidArgumentError):
            sio.set_presence(bob.sid, {"status": "asleep"})
        with pytest.raises(roomcast.InvalidArgumentError):
            sio.set_presence(bob.sid, ["not", "an", "object"])  # type: ignore[arg-type]
        sio.set_presence(alice1.sid, {"status": "busy"})
        assert (await bob.next("presence:update"))["meta"] == {"status": "busy"}
        assert sio.get_presence(alice2.sid) == {"status": "online"}, "metadata is per connection"
        await bob.quiet()

        # Outside the connect handler a user id cannot be set.
        with pytest.raises(roomcast.InvalidArgumentError) as e:
            sio.set_user_id(bob.sid, "mallory")
        assert isinstance(e.value, roomcast.RoomcastError) and e.value.code == "ERR_INVALID_ARGUMENT"
        with pytest.raises(roomcast.NotFoundError):
            sio.set_user_id("no-such-sid", "x")
        with pytest.raises(roomcast.NotFoundError):
            sio.get_presence("no-such-sid")

        # The member leaves with its last connection.
        await alice1.close()
        await bob.quiet()
        await alice2.close()
        leave = await bob.next("presence:leave")
        assert (leave["room"], leave["userId"], leave["connections"]) == ("lobby", "alice", 0)
        assert not await sio.is_online("alice")
        assert [m["userId"] for m in await sio.presence("lobby")] == ["bob"]
    finally:
        for peer in (bob, alice1, alice2, nameless):
            await peer.close()
        await sio.shutdown()


@bounded(30)
async def test_cluster_options_are_checked() -> None:
    with pytest.raises(roomcast.InvalidArgumentError):
        roomcast.AsyncServer(client_manager="redis://127.0.0.1:6379")  # type: ignore[arg-type]
    with pytest.raises(roomcast.ConfigError):
        roomcast.AsyncServer(client_manager=roomcast.AsyncRedisManager("redis://127.0.0.1:1", node_ttl=0.1))
    with pytest.raises(roomcast.ConfigError):
        roomcast.AsyncServer(client_manager=roomcast.AsyncRedisManager("not a url"))
    with pytest.raises(roomcast.InvalidArgumentError):
        roomcast.AsyncServer(client_manager=roomcast.AsyncRedisManager("redis://127.0.0.1:1", connect_timeout=-1))
    # Without Redis there is no cluster: no node id, no lost nodes.
    sio = roomcast.AsyncServer()
    sio.on_node_lost(lambda info: None)
    assert sio.node_id is None


@bounded(60)
async def test_two_nodes_share_rooms_broadcasts_and_presence(redis_url: str) -> None:
    channel = new_channel()
    nodes = [presence_server(client_manager=roomcast.AsyncRedisManager(redis_url, channel)) for _ in range(2)]
    sio_a, sio_b = nodes
    for sio in nodes:
        sio.enable_presence()
    port_a = await sio_a.serve("127.0.0.1", 0)
    port_b = await sio_b.serve("127.0.0.1", 0)
    assert sio_a.node_id and sio_b.node_id and sio_a.node_id != sio_b.node_id
    alice, bob = Peer(), Peer()
    try:
        await bob.connect(port_b, "bob")
        await bob.enter("lobby")
        await alice.connect(port_a, "alice")
        await alice.enter("lobby")
        join = await bob.next("presence:join")  # entered on A, seen on B
        assert (join["room"], join["userId"], join["connections"]) == ("lobby", "alice", 1)
        await alice.quiet()  # the socket that entered is not told

        await sio_a.emit("news", "to the lobby", room="lobby")
        await asyncio.wait_for(alice.got_news.wait(), 10)
        await asyncio.wait_for(bob.got_news.wait(), 10)
        await asyncio.sleep(0.5)  # and no second copy
        assert (alice.news, bob.news) == (["to the lobby"], ["to the lobby"])

        for sio in nodes:
            members = sorted(await sio.presence("lobby"), key=lambda m: str(m["userId"]))
            assert [(m["userId"], m["connections"]) for m in members] == [("alice", 1), ("bob", 1)]
            assert await sio.presence_count("lobby") == 2
        assert await sio_b.is_online("alice")
        assert await sio_a.online_users(["alice", "bob", "zed"]) == {"alice": True, "bob": True, "zed": False}

        sio_a.set_presence(alice.sid, {"status": "away"})
        update = await bob.next("presence:update")
        assert (update["userId"], update["meta"]) == ("alice", {"status": "away"})
        await alice.close()
        assert (await bob.next("presence:leave"))["userId"] == "alice"
        assert not await sio_b.is_online("alice")
    finally:
        await alice.close()
        await bob.close()
        for sio in nodes:
            await sio.shutdown()


@bounded(60)
async def test_a_killed_node_leaves_presence_and_its_sockets_are_reported_once(redis_url: str) -> None:
    channel = new_channel()
    child = NodeProcess(redis_url, channel)
    sio = presence_server(client_manager=roomcast.AsyncRedisManager(redis_url, channel, node_ttl=1.0))
    sio.enable_presence()
    lost: list[dict[str, Any]] = []

    @sio.on_node_lost
    async def node_lost(info: dict[str, Any]) -> None:
        lost.append(info)

    alice, bob = Peer(), Peer()
    try:
        child_port, child_node = await child.address()
        port = await sio.serve("127.0.0.1", 0)
        await bob.connect(port, "bob")
        await bob.enter("lobby")
        await alice.connect(child_port, "alice")
        await alice.enter("lobby")
        assert (await bob.next("presence:join"))["userId"] == "alice"
        assert await sio.is_online("alice")
        alice_sid = alice.sid

        child.send_signal(signal.SIGKILL)
        child.wait()
        killed = time.monotonic()
        leave = await bob.next("presence:leave")
        assert (leave["room"], leave["userId"]) == ("lobby", "alice")
        assert time.monotonic() - killed < 4, "within the TTL and a heartbeat or two"
        while not lost:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # and not reported again
        assert lost == [{"node": child_node, "namespace": "/", "sid": alice_sid, "userId": "alice"}]
        assert not await sio.is_online("alice")
        assert [m["userId"] for m in await sio.presence("lobby")] == ["bob"]
    finally:
        child.stop()
        await alice.close()
        await bob.close()
        await sio.shutdown()


async def _two_nodes(url: str) -> tuple[list[roomcast.AsyncServer], list[int]]:
    """Two servers with presence on the cluster at ``url``, serving."""
    nodes = [presence_server(client_manager=roomcast.AsyncRedisManager(url)) for _ in range(2)]
    for sio in nodes:
        sio.enable_presence()
    return nodes, [await sio.serve("127.0.0.1", 0) for sio in nodes]


@bounded(60)
async def test_a_redis_restart_keeps_local_traffic_and_the_cluster_recovers(redis_server: RedisServer) -> None:
    (sio_a, sio_b), (port_a, port_b) = await _two_nodes(redis_server.url)
    alice, bob, carol = Peer(), Peer(), Peer()
    try:
        await bob.connect(port_b, "bob")
        await bob.enter("lobby")
        await alice.connect(port_a, "alice")
        await alice.enter("lobby")
        await sio_a.emit("news", "before", room="lobby")
        await asyncio.wait_for(bob.got_news.wait(), 10)

        redis_server.kill()
        # Local joins and deliveries go on without Redis.
        await carol.connect(port_a, "carol")
        await asyncio.wait_for(carol.enter("lobby"), 10)
        alice.got_news.clear()
        await sio_a.emit("news", "during", room="lobby")
        await asyncio.wait_for(alice.got_news.wait(), 10)
        await asyncio.wait_for(carol.got_news.wait(), 10)

        redis_server.restart()
        bob.got_news.clear()

        async def crossed() -> None:
            while not bob.got_news.is_set():
                await sio_a.emit("news", "after", room="lobby")
                await asyncio.sleep(0.3)

        await asyncio.wait_for(crossed(), 20)
        assert bob.news[-1] == "after"

        async def present() -> None:
            # Each node writes its presence again (Redis came back empty).
            while True:
                try:
                    users = sorted(str(m["userId"]) for m in await sio_b.presence("lobby"))
                except roomcast.RoomcastError:
                    users = []
                if users == ["alice", "bob", "carol"]:
                    return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(present(), 10)
        assert await sio_b.is_online("carol")
        assert sio_a.stats()["cluster_errors"] > 0, "the outage is counted"
    finally:
        for peer in (alice, bob, carol):
            await peer.close()
        for sio in (sio_a, sio_b):
            await sio.shutdown()


@bounded(60)
async def test_a_redis_cluster_carries_sharded_broadcasts_and_presence(redis_cluster_url: str) -> None:
    (sio_a, sio_b), (port_a, port_b) = await _two_nodes(redis_cluster_url)
    ann, ben = Peer(), Peer()
    got: list[object] = []
    ben.client.on("shard", got.append)
    # Rooms whose channels hash to different slots, on different masters.
    rooms = ["alpha", "bravo", "charlie", "delta"]
    try:
        await ann.connect(port_a, "ann")
        await ben.connect(port_b, "ben")
        for room in rooms:
            await ann.enter(room)
            await ben.enter(room)
        for i, room in enumerate(rooms):
            await sio_a.emit("shard", i, room=room)

        async def all_crossed() -> None:
            while len(got) < len(rooms):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(all_crossed(), 10)
        await asyncio.sleep(0.3)
        assert sorted(got) == [0, 1, 2, 3], "each room's broadcast crossed once"  # type: ignore[type-var]
        assert sorted(str(m["userId"]) for m in await sio_b.presence("charlie")) == ["ann", "ben"]
        assert await sio_a.is_online("ben")
        assert sio_a.stats()["cluster_errors"] == 0
    finally:
        await ann.close()
        await ben.close()
        for sio in (sio_a, sio_b):
            await sio.shutdown()
