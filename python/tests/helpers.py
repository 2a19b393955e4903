"""What the cluster suites (test_presence.py, test_cluster_queries.py) and
their child node (presence_node.py) share; importable as ``helpers`` because
pyproject.toml puts this folder on pytest's ``pythonpath``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import pathlib
import signal
import subprocess
import sys
import uuid
from typing import Any, Awaitable, Callable, Optional, TypeVar

import socketio

import roomcast

NODE_SCRIPT = pathlib.Path(__file__).resolve().parent / "presence_node.py"

T = TypeVar("T", bound=Callable[..., Awaitable[None]])
P = TypeVar("P", bound="ClientPeer")


def bounded(seconds: float) -> Callable[[T], T]:
    """Fail the test if it runs longer than ``seconds``."""

    def wrap(test: T) -> T:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> None:
            await asyncio.wait_for(test(*args, **kwargs), seconds)

        return run  # type: ignore[return-value]

    return wrap


def new_channel() -> str:
    """A Redis channel of the test's own, so that its nodes form a cluster of their own."""
    return f"test-{uuid.uuid4().hex[:8]}"


def name_users_from_auth(sio: roomcast.AsyncServer) -> None:
    """Name each client's user from ``auth["user"]`` (when given), as every cluster test's server does."""

    @sio.event
    async def connect(sid: str, environ: dict[str, str], auth: object) -> None:
        if isinstance(auth, dict) and auth.get("user"):
            sio.set_user_id(sid, str(auth["user"]))


def users_and_rooms(sio: roomcast.AsyncServer) -> roomcast.AsyncServer:
    """Users named from ``auth["user"]`` and an ``enter`` event that puts the
    client in a room (acked with True): the app of the nodes in this process
    and of the one in a child process alike."""
    name_users_from_auth(sio)

    @sio.event
    async def enter(sid: str, room: str) -> bool:
        await sio.enter_room(sid, room)
        return True

    return sio


class NodeProcess(subprocess.Popen[str]):
    """presence_node.py in a process of its own, a node of the cluster on
    ``channel`` (node TTL ``node_ttl`` seconds, its default without), for the
    test to kill or freeze."""

    def __init__(self, redis_url: str, channel: str, node_ttl: Optional[float] = None) -> None:
        ttl = [] if node_ttl is None else [str(node_ttl)]
        super().__init__(
            [sys.executable, str(NODE_SCRIPT), redis_url, channel, *ttl],
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.path.dirname(NODE_SCRIPT),
        )

    async def address(self) -> tuple[int, str]:
        """The node's port and node id, once it serves."""
        assert self.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.stdout.readline), 20)
        assert line, f"the node process exited with {self.wait()}"
        port, node_id = line.split()
        return int(port), node_id

    def stop(self) -> None:
        """Kill it (thawed first, should it be frozen) and reap it."""
        with contextlib.suppress(ProcessLookupError):
            self.send_signal(signal.SIGCONT)
            self.kill()
        self.wait()


class ClientPeer:
    """A python-socketio client (no reconnection) of a test, which closes it at
    the end (``async with`` one does, as does a ``finally`` calling ``close``)."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)

    async def __aenter__(self: P) -> P:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _connect(self, port: int, **options: Any) -> None:
        """Connect over WebSocket to the server on ``port`` (within 10 s)."""
        await asyncio.wait_for(self.client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], **options), 10)

    @property
    def sid(self) -> str:
        """The client's sid on the server (it must be connected)."""
        sid: Optional[str] = self.client.get_sid()
        assert sid is not None
        return sid

    async def close(self) -> None:
        """Disconnect; harmless when already disconnected, so finally blocks can call it."""
        await self.client.disconnect()


class Proxy:
    """Forwards TCP connections to ``target``; ``cut()`` drops every open
    one, ``pause()`` stops reading what the server sends (a client that does
    not read) until ``resume()``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.flowing = asyncio.Event()
        self.flowing.set()

    def pause(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.links.append((writer, up_writer))

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, gate: Optional[asyncio.Event]) -> None:
            try:
                while (gate is None or await gate.wait()) and (data := await r.read(65536)):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(reader, up_writer, None), pipe(up_reader, writer, self.flowing))

    def cut(self) -> None:
        for a, b in self.links:
            for w in (a, b):
                w.transport.abort()
        self.links.clear()

    async def close(self) -> None:
        self.cut()
        self.server.close()
