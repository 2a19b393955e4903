"""Cluster queries (fetch_sockets, rooms and disconnects of clients on other
nodes, broadcasts with acks, server events) with python-socketio's
AsyncClient, nodes in this process and in a child process, on a redis-server
of the test's own (the ``redis_url`` fixture of conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any, AsyncIterator, NamedTuple, Optional

import pytest

import roomcast
from helpers import ClientPeer, NodeProcess, bounded, new_channel, users_and_rooms

pytestmark = pytest.mark.asyncio(loop_scope="function")


class Peer(ClientPeer):
    """A python-socketio client named ``name``: it answers ``question`` with
    ``"<name>:<data>"`` (after ``delay`` seconds) and records ``news``."""

    def __init__(self, name: str, delay: float = 0) -> None:
        super().__init__()
        self.name, self.delay = name, delay
        self.news: asyncio.Queue[object] = asyncio.Queue()
        self.gone = asyncio.Event()
        self.client.on("news", self._news)
        self.client.on("disconnect", self._disconnect)
        self.client.on("question", self._question)

    async def _news(self, data: object) -> None:
        await self.news.put(data)

    async def _disconnect(self, *reason: object) -> None:
        self.gone.set()

    async def _question(self, data: object) -> str:
        await asyncio.sleep(self.delay)
        return f"{self.name}:{data}"

    async def connect(self, port: int) -> Peer:
        await self._connect(port, auth={"user": self.name}, headers={"x-peer": self.name})
        return self

    async def enter(self, room: str) -> None:
        assert await self.client.call("enter", room, timeout=10)

    async def quiet(self, wait: float = 0.3) -> None:
        """No news comes within ``wait`` seconds."""
        await asyncio.sleep(wait)
        assert self.news.empty(), f"{self.name} got {self.news.get_nowait()}"


def node(redis_url: Optional[str], channel: str = "", **manager: Any) -> roomcast.AsyncServer:
    """A server (a cluster node with ``redis_url``) naming each client's user
    from ``auth["user"]``, with an ``enter`` event that puts the client in a room."""
    mgr = None if redis_url is None else roomcast.AsyncRedisManager(redis_url, channel, **manager)
    return users_and_rooms(roomcast.AsyncServer(client_manager=mgr))


def by_id(sockets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Sockets from ``fetch_sockets`` by sid, to look one up."""
    return {s["id"]: s for s in sockets}


class TwoNodes(NamedTuple):
    """What ``alice_on_a_bob_on_b`` gives a test, to unpack in its ``async with``."""

    sio_a: roomcast.AsyncServer
    sio_b: roomcast.AsyncServer
    alice: Peer
    bob: Peer
    port_b: int


@contextlib.asynccontextmanager
async def alice_on_a_bob_on_b(redis_url: str) -> AsyncIterator[TwoNodes]:
    """Two nodes of a cluster of their own, alice connected to a and bob to b
    (``port_b`` for more clients of b): how each two-node test starts; all of
    it is closed at the end."""
    name = new_channel()
    sio_a, sio_b = node(redis_url, name), node(redis_url, name)
    port_a, port_b = await sio_a.serve("127.0.0.1", 0), await sio_b.serve("127.0.0.1", 0)
    alice, bob = Peer("alice"), Peer("bob")
    try:
        await alice.connect(port_a)
        await bob.connect(port_b)
        yield TwoNodes(sio_a, sio_b, alice, bob, port_b)
    finally:
        await alice.close()
        await bob.close()
        await sio_a.shutdown()
        await sio_b.shutdown()


@bounded(60)
async def test_queries_without_a_cluster_answer_for_this_server() -> None:
    sio = node(None)
    port = await sio.serve("127.0.0.1", 0)
    ada = Peer("ada")
    try:
        await ada.connect(port)
        await ada.enter("lobby")
        found = await sio.fetch_sockets()
        assert isinstance(found, roomcast.PartialList) and found.missing == [] and found.complete
        (socket,) = found
        assert (socket["id"], socket["node"], socket["namespace"], socket["userId"]) == (ada.sid, None, "/", "ada")
        assert socket["rooms"][0] == ada.sid and set(socket["rooms"]) == {ada.sid, "lobby", "user:ada"}
        assert await sio.fetch_sockets("elsewhere") == []
        assert await sio.rooms_everywhere() == ["lobby", "user:ada"]
        count = await sio.count_everywhere()
        assert isinstance(count, roomcast.PartialCount) and count == 1 and count.missing == []
        assert await sio.nodes() == []
        stats = sio.stats()
        assert (stats["sockets"], stats["rooms"], stats["users"]) == (1, 2, 1)
        assert (stats["cluster_messages_out"], stats["cluster_errors"]) == (0, 0)
        assert stats["messages_in"] >= 1 and stats["bytes_out"] > 0
        sent = await sio.server_emit("anyone", 1)
        assert isinstance(sent, roomcast.PartialDict) and sent == {} and sent.complete
        replies = await sio.call_everywhere("question", "q", timeout=10)
        assert (replies, replies.errors, replies.missing) == ({ada.sid: "ada:q"}, {}, [])
        assert await sio.sockets_join("hall") == 1
        assert "hall" in sio.rooms(ada.sid)
        with pytest.raises(roomcast.NotFoundError):
            await sio.call("question", to="no-such-sid")
        await sio.enter_room("no-such-sid", "lobby")  # silently nobody, as before
        assert await sio.disconnect_sockets("lobby") == 1
        await asyncio.wait_for(ada.gone.wait(), 10)
    finally:
        await ada.close()
        await sio.shutdown()


@bounded(60)
async def test_fetch_sockets_rooms_and_counts_span_both_nodes(redis_url: str) -> None:
    async with alice_on_a_bob_on_b(redis_url) as (sio_a, sio_b, alice, bob, _):
        await alice.enter("lobby")
        await alice.enter("a-only")
        await bob.enter("lobby")
        assert sio_a.node_id and sio_b.node_id and sio_a.node_id != sio_b.node_id
        assert await sio_a.nodes() == await sio_b.nodes() == sorted([sio_a.node_id, sio_b.node_id])

        for sio in (sio_a, sio_b):
            found = await sio.fetch_sockets()
            assert found.missing == [], "every node answered"
            sockets = by_id(found)
            assert set(sockets) == {alice.sid, bob.sid}
            a, b = sockets[alice.sid], sockets[bob.sid]
            assert set(a) == {"id", "node", "namespace", "userId", "rooms", "data", "handshake"}
            assert (a["node"], a["namespace"], a["userId"]) == (sio_a.node_id, "/", "alice")
            assert (b["node"], b["userId"]) == (sio_b.node_id, "bob")
            assert a["rooms"][0] == alice.sid and set(a["rooms"]) == {alice.sid, "lobby", "a-only", "user:alice"}
            assert b["rooms"][0] == bob.sid and set(b["rooms"]) == {bob.sid, "lobby", "user:bob"}
            hs = b["handshake"]
            assert hs["auth"] == {"user": "bob"} and hs["headers"]["x-peer"] == "bob"
            assert hs["address"].startswith("127.0.0.1") and hs["path"].startswith("/socket.io")
            assert ["EIO", "4"] in hs["query"]

        assert [s["id"] for s in await sio_b.fetch_sockets("a-only")] == [alice.sid]
        assert [s["id"] for s in await sio_b.fetch_sockets("lobby", skip_sid=bob.sid)] == [alice.sid]
        assert [s["id"] for s in await sio_a.fetch_sockets(bob.sid)] == [bob.sid]
        assert await sio_a.fetch_sockets("lobby", namespace="/other") == []
        assert await sio_b.rooms_everywhere() == ["a-only", "lobby", "user:alice", "user:bob"]
        count = await sio_a.count_everywhere()
        assert (count, count.missing) == (2, [])


@bounded(60)
async def test_rooms_calls_and_disconnects_reach_clients_of_the_other_node(redis_url: str) -> None:
    async with alice_on_a_bob_on_b(redis_url) as (sio_a, sio_b, alice, bob, _):
        assert sio_a.rooms(bob.sid) == [], "rooms(sid) knows this node's clients only"

        # python-socketio's enter_room / leave_room with a client manager: any node's client.
        await sio_a.enter_room(bob.sid, "vip")
        await sio_a.emit("news", "for the vips", room="vip")
        assert await asyncio.wait_for(bob.news.get(), 10) == "for the vips"
        await alice.quiet()
        assert "vip" in sio_b.rooms(bob.sid)
        await sio_a.leave_room(bob.sid, "vip")
        assert "vip" not in sio_b.rooms(bob.sid)
        await sio_a.emit("news", "nobody", room="vip")
        await bob.quiet()

        # close_room empties the room on every node.
        await sio_a.enter_room(alice.sid, "temp")
        await sio_a.enter_room(bob.sid, "temp")
        assert {s["id"] for s in await sio_b.fetch_sockets("temp")} == {alice.sid, bob.sid}
        await sio_a.close_room("temp")
        assert await sio_b.fetch_sockets("temp") == []
        assert "temp" not in await sio_a.rooms_everywhere()

        # The explicit forms count the clients they reached, on every node.
        joined = await sio_b.sockets_join("hall")
        assert (joined, joined.missing) == (2, [])
        assert await sio_b.sockets_leave("hall", to=alice.sid) == 1
        assert [s["id"] for s in await sio_a.fetch_sockets("hall")] == [bob.sid]

        # call() to a client of another node gets its ack, and an emit callback too.
        assert await sio_a.call("question", "who", to=bob.sid, timeout=10) == "bob:who"
        acked: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        await sio_a.emit("question", "cb", to=bob.sid, callback=acked.set_result)
        assert await asyncio.wait_for(acked, 10) == "bob:cb"
        with pytest.raises(roomcast.NotFoundError):
            await sio_a.call("question", to="no-such-sid", timeout=10)

        # disconnect(sid) of a client of another node.
        await sio_a.disconnect(bob.sid)
        await asyncio.wait_for(bob.gone.wait(), 10)
        assert [s["id"] for s in await sio_b.fetch_sockets()] == [alice.sid]
        assert await sio_b.count_everywhere() == 1
        await sio_b.disconnect(alice.sid, close=True)
        await asyncio.wait_for(alice.gone.wait(), 10)
        assert await sio_a.count_everywhere() == 0


@bounded(60)
async def test_broadcast_acks_and_server_events_across_nodes(redis_url: str) -> None:
    async with alice_on_a_bob_on_b(redis_url) as (sio_a, sio_b, alice, bob, port_b), Peer("slow", delay=3) as slow:
        calls: list[tuple[str, tuple[object, ...]]] = []

        @sio_b.on_server_event("sum")
        def total(a: int, b: int) -> int:  # a plain function
            calls.append(("b", (a, b)))
            return a + b

        @sio_a.on_server_event("sum")
        async def total_a(a: int, b: int) -> int:  # not called: server_emit asks the other nodes
            calls.append(("a", (a, b)))
            return -1

        async def pair(data: object) -> tuple[object, str]:
            return data, "twice"

        sio_b.on_server_event("pair", pair)

        @sio_b.on_server_event("fail")
        def fail() -> None:
            raise RuntimeError("on purpose")

        await bob.enter("lobby")

        replies = await sio_a.call_everywhere("question", "q?", timeout=10)
        assert isinstance(replies, roomcast.AckReplies)
        assert (replies, replies.errors, replies.missing) == ({alice.sid: "alice:q?", bob.sid: "bob:q?"}, {}, [])
        assert await sio_b.call_everywhere("question", "lobby?", room="lobby", timeout=10) == {bob.sid: "bob:lobby?"}
        assert await sio_b.call_everywhere("question", "x", skip_sid=bob.sid, timeout=10) == {alice.sid: "alice:x"}

        # A client that does not ack in time is reported, not waited for beyond the timeout.
        await slow.connect(port_b)
        started = time.monotonic()
        replies = await sio_a.call_everywhere("question", "hm", timeout=1)
        assert time.monotonic() - started < 5
        assert dict(replies) == {alice.sid: "alice:hm", bob.sid: "bob:hm"}
        assert (replies.errors, replies.missing) == ({slow.sid: "ERR_TIMEOUT"}, [])

        sent = await sio_a.server_emit("sum", (1, 2))
        assert isinstance(sent, roomcast.PartialDict)
        assert (sent, sent.missing, calls) == ({sio_b.node_id: 3}, [], [("b", (1, 2))])
        assert await sio_a.server_emit("pair", b"\x00\x01") == {sio_b.node_id: (b"\x00\x01", "twice")}
        assert await sio_b.server_emit("nobody listens") == {}, "a node without a handler answers nothing"
        assert await sio_a.server_emit("fail") == {sio_b.node_id: None}, "a failing handler answers no data"
        assert calls == [("b", (1, 2))]


@bounded(60)
async def test_a_frozen_node_makes_answers_partial_within_the_request_timeout(redis_url: str) -> None:
    name = new_channel()
    # A long node TTL: frozen, the child stays a registered node the others expect answers from.
    child = NodeProcess(redis_url, name, node_ttl=30)
    sio = node(redis_url, name, request_timeout=1.0)
    alice, bob = Peer("alice"), Peer("bob")
    try:
        child_port, child_node = await child.address()
        port = await sio.serve("127.0.0.1", 0)
        await alice.connect(child_port)
        await alice.enter("lobby")
        await bob.connect(port)
        found = await sio.fetch_sockets()
        assert {s["id"]: s["node"] for s in found} == {alice.sid: child_node, bob.sid: sio.node_id}
        assert found.missing == []
        assert await sio.server_emit("whoami") == {child_node: child_node}

        child.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        found = await sio.fetch_sockets()
        waited = time.monotonic() - started
        assert 0.8 < waited < 3, f"answered after {waited:.2f} s"
        assert ([s["id"] for s in found], found.missing, found.complete) == ([bob.sid], [child_node], False)
        count = await sio.count_everywhere()
        assert (count, count.missing) == (1, [child_node])
        rooms = await sio.rooms_everywhere()
        assert (rooms, rooms.missing) == (["user:bob"], [child_node])
        sent = await sio.server_emit("whoami")
        assert (sent, sent.missing) == ({}, [child_node])
        replies = await sio.call_everywhere("question", "still there?", timeout=0.5)
        assert (replies, replies.missing) == ({bob.sid: "bob:still there?"}, [child_node])
        joined = await sio.sockets_join("late", to="lobby")
        assert (joined, joined.missing) == (0, [child_node])
        assert time.monotonic() - started < 15

        child.send_signal(signal.SIGCONT)
        found = await sio.fetch_sockets()
        assert ({s["id"] for s in found}, found.missing) == ({alice.sid, bob.sid}, [])
        # The requests it missed are done once thawed (their answers come too late, unheard).
        while "late" not in by_id(await sio.fetch_sockets())[alice.sid]["rooms"]:
            await asyncio.sleep(0.05)
    finally:
        child.stop()
        await alice.close()
        await bob.close()
        await sio.shutdown()


@bounded(60)
async def test_a_node_receives_a_rooms_broadcasts_only_while_it_hosts_a_member(redis_url: str) -> None:
    async with alice_on_a_bob_on_b(redis_url) as (sio_a, sio_b, alice, bob, _):
        await alice.enter("quiet")
        await asyncio.sleep(0.2)  # the join notices of other rooms have gone through
        before = sio_b.stats()["cluster_messages_in"]
        for i in range(20):
            await sio_a.emit("news", i, room="quiet")
        for i in range(20):
            assert await asyncio.wait_for(alice.news.get(), 10) == i
        await asyncio.sleep(0.3)
        assert sio_b.stats()["cluster_messages_in"] == before, "b hosts no member of the room: none of its traffic"

        await bob.enter("quiet")  # b subscribes before the join is answered
        joined = sio_b.stats()["cluster_messages_in"]
        await sio_a.emit("news", "now", room="quiet")
        assert await asyncio.wait_for(bob.news.get(), 10) == "now"
        assert sio_b.stats()["cluster_messages_in"] == joined + 1
        assert sio_a.stats()["cluster_messages_out"] >= 21
