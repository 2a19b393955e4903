"""roomcast: real-time messaging with a native Rust core.

``AsyncServer`` follows python-socketio's ``AsyncServer``: handlers are
registered with ``@sio.event`` / ``@sio.on(...)``, take ``(sid, *args)`` and
return the ack. The protocol work happens in Rust; this module only adapts
arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, TypeVar, Union, overload

from . import _native
from ._native import *  # noqa: F403  (the exception classes)
from ._native import InvalidArgumentError, NotFoundError

__version__ = _native.__version__

#: AsyncServer, AsyncClient, AsyncRedisManager, the cluster-wide answers and the
#: exception hierarchy under RoomcastError.
__all__ = [
    "AckReplies",
    "AsyncClient",
    "AsyncRedisManager",
    "AsyncServer",
    "PartialCount",
    "PartialDict",
    "PartialList",
    *(name for name in _native.__all__ if name.endswith("Error")),
]

Handler = TypeVar("Handler", bound=Callable[..., Any])
T = TypeVar("T")


def _as_coroutine_function(f: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Handlers run on the asyncio loop; a plain function is wrapped so it does too."""
    if inspect.iscoroutinefunction(f):
        return f

    async def call(*args: Any) -> Any:
        return f(*args)

    return call


def _args(data: Any) -> list[Any]:
    """python-socketio's convention: a tuple is several arguments, None none."""
    return list(data) if isinstance(data, tuple) else [] if data is None else [data]


def _ack(reply: list[Any]) -> Any:
    """An ack's arguments as python-socketio returns them: one as is, several
    as a tuple, none as None."""
    if not reply:
        return None
    return reply[0] if len(reply) == 1 else tuple(reply)


#: How long an emit's callback waits for its ack; a disconnect drops it sooner.
CALLBACK_TIMEOUT = 3600.0


def _callback_task(ack: Awaitable[list[Any]], callback: Callable[..., Any]) -> None:
    """Run ``callback(*ack arguments)`` once the ack comes; none if it never does."""

    async def deliver() -> None:
        try:
            reply = await ack
        except RoomcastError:
            return
        result = callback(*reply)
        if inspect.isawaitable(result):
            await result

    task = asyncio.ensure_future(deliver())
    _pending.add(task)
    task.add_done_callback(_pending.discard)


# Callback tasks, kept referenced until done (asyncio holds tasks weakly).
_pending: set[asyncio.Future[None]] = set()


def _rooms(value: Union[str, Iterable[str], None]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


class _Partial:
    """``missing`` and ``complete``, which every cluster-wide answer has alike."""

    missing: list[str]

    @property
    def complete(self) -> bool:
        """Whether every node answered."""
        return not self.missing


class PartialList(_Partial, List[T]):
    """A list gathered from every node of a cluster. ``missing`` names the
    nodes that did not answer within the request timeout (dead, frozen or
    overloaded): what they hold is absent. Empty when the answer is complete,
    and always without a ``client_manager``."""

    def __init__(self, items: Iterable[T] = (), missing: Iterable[str] = ()) -> None:
        super().__init__(items)
        self.missing = list(missing)

    def __repr__(self) -> str:
        return f"PartialList({list(self)!r}, missing={self.missing!r})"


class PartialDict(_Partial, Dict[str, T]):
    """A dict gathered from every node of a cluster, with ``missing`` as
    :class:`PartialList` has it."""

    def __init__(self, items: Iterable[tuple[str, T]] = (), missing: Iterable[str] = ()) -> None:
        super().__init__(items)
        self.missing = list(missing)

    def __repr__(self) -> str:
        return f"PartialDict({dict(self)!r}, missing={self.missing!r})"


class AckReplies(PartialDict[Any]):
    """The acks of a broadcast on every node: ``{sid: ack}`` (one argument as
    is, several as a tuple, none as ``None``). ``errors`` maps the clients that
    did not ack to the error code why (``"ERR_TIMEOUT"``, ``"ERR_CLOSED"``);
    ``missing`` names the nodes that did not report in time."""

    def __init__(
        self, items: Iterable[tuple[str, Any]] = (), missing: Iterable[str] = (), errors: Optional[dict[str, str]] = None
    ) -> None:
        super().__init__(items, missing)
        self.errors: dict[str, str] = dict(errors or {})

    def __repr__(self) -> str:
        return f"AckReplies({dict(self)!r}, missing={self.missing!r}, errors={self.errors!r})"


class PartialCount(_Partial, int):
    """A count over every node of a cluster (an ``int``), with ``missing`` as
    :class:`PartialList` has it."""

    def __new__(cls, value: int = 0, missing: Iterable[str] = ()) -> PartialCount:
        count = super().__new__(cls, value)
        count.missing = list(missing)
        return count

    def __repr__(self) -> str:
        return f"PartialCount({int(self)}, missing={self.missing!r})"


class _Handlers:
    """``on`` and ``event`` as python-socketio has them, for server and client."""

    def _register(self, event: str, f: Callable[..., Any], namespace: str) -> None:
        raise NotImplementedError

    def on(self, event: str, handler: Optional[Callable[..., Any]] = None, namespace: str = "/") -> Any:
        """Register ``handler`` for ``event``; usable as a decorator."""

        def register(f: Handler) -> Handler:
            self._register(event, f, namespace)
            return f

        if handler is None:
            return register
        register(handler)
        return None

    def event(self, handler: Optional[Handler] = None, *, namespace: str = "/") -> Any:
        """Register a handler for the event named like the function:
        ``@sio.event`` or ``@sio.event(namespace="/chat")``."""

        def register(f: Handler) -> Handler:
            self._register(f.__name__, f, namespace)
            return f

        return register if handler is None else register(handler)


class AsyncRedisManager:
    """A cluster over Redis, as python-socketio's ``AsyncRedisManager``: every
    ``AsyncServer(client_manager=AsyncRedisManager(url))`` on the same Redis
    and ``channel`` shares broadcasts, rooms, presence and ``is_online``.

    ``url`` is ``redis://``, ``rediss://`` (TLS), ``redis-cluster://host:port?node=host:port``
    or ``redis-sentinel://host:port?sentinelServiceName=name``; ``channel`` prefixes
    every key and channel. A node whose heartbeat is older than ``node_ttl``
    seconds is dead: the others remove its members. ``serve()`` waits at most
    ``connect_timeout`` seconds for Redis. A cluster query (``fetch_sockets``,
    ``server_emit``, ...) waits at most ``request_timeout`` seconds for the other
    nodes; those that did not answer by then are named in its ``missing``.
    """

    def __init__(
        self,
        url: str,
        channel: str = "roomcast",
        *,
        node_ttl: float = 10.0,
        connect_timeout: float = 5.0,
        request_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.channel = channel
        self.node_ttl = float(node_ttl)
        self.connect_timeout = float(connect_timeout)
        self.request_timeout = float(request_timeout)

    def __repr__(self) -> str:
        return (
            f"AsyncRedisManager({self.url!r}, {self.channel!r}, node_ttl={self.node_ttl}, "
            f"connect_timeout={self.connect_timeout}, request_timeout={self.request_timeout})"
        )


class AsyncServer(_Handlers):
    """A Socket.IO (and JSON-protocol) server, shaped like python-socketio's."""

    def __init__(
        self,
        *,
        client_manager: Optional[AsyncRedisManager] = None,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_http_buffer_size: int = 1_000_000,
        cors_allowed_origins: Union[str, Iterable[str], None] = None,
        connection_state_recovery: Union[bool, Mapping[str, Any], None] = None,
        outbound_queue_messages: int = 4096,
        outbound_queue_bytes: int = 8 * 1024 * 1024,
        overflow: str = "close",
        metrics_path: Optional[str] = None,
        max_connections: Optional[int] = None,
        max_connections_per_ip: Optional[int] = None,
        connection_rate_per_ip: Optional[float] = None,
        connection_burst_per_ip: Optional[int] = None,
    ) -> None:
        """``max_connections`` and ``max_connections_per_ip`` cap the
        connections open at once (in total, from one IP address);
        ``connection_rate_per_ip`` caps how many new ones an address may open
        per second, ``connection_burst_per_ip`` at once (default: twice the
        rate). A refused client gets HTTP 503 or 429 before any upgrade
        (roomcast extensions).

        ``metrics_path`` (e.g. ``"/metrics"``) serves Prometheus metrics
        there: connections, sockets, rooms and presence members per
        namespace, messages and bytes, drops, ack timeouts, recovery hits and
        misses, Redis publish latency and errors, cluster request timeouts.

        ``outbound_queue_messages`` and ``outbound_queue_bytes`` bound what
        waits to be written to one connection (roomcast extensions). When a
        slow client's queue is full, volatile emits are dropped, and
        ``overflow`` decides for the rest: ``"close"`` disconnects the client
        (it reconnects, and with recovery gets what it missed), ``"drop"``
        drops the event. ``buffered_amount(sid)`` and ``drained(sid)`` let a
        sender pace itself.

        ``connection_state_recovery`` (a roomcast extension, socket.io's
        option): ``True``, or a dict with ``max_disconnection_duration``
        (seconds, default 120), ``skip_middlewares`` and ``max_packets``
        (default 10000). A client that loses its connection and comes back
        within the window gets its sid, rooms and session back, and the
        events it missed; ``recovered(sid)`` tells. The ``connect`` handler
        is where a python-socketio app learns of a client, so it runs for
        recovered clients too unless ``skip_middlewares`` is True (default
        False here, True in socket.io, where ``connection`` always fires)."""
        if client_manager is not None and not isinstance(client_manager, AsyncRedisManager):
            raise InvalidArgumentError("client_manager must be a roomcast.AsyncRedisManager")
        recovery: Mapping[str, Any] = {}
        if isinstance(connection_state_recovery, Mapping):
            recovery = connection_state_recovery
        elif connection_state_recovery not in (None, False, True):
            raise InvalidArgumentError("connection_state_recovery must be a bool or a dict")
        unknown = set(recovery) - {"max_disconnection_duration", "skip_middlewares", "max_packets"}
        if unknown:
            raise InvalidArgumentError(f"unknown connection_state_recovery keys: {sorted(unknown)}")
        enabled = bool(connection_state_recovery)
        redis = client_manager
        self._native = _native.Server(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_payload=max_http_buffer_size,
            allowed_origins=_rooms(cors_allowed_origins),
            redis_url=None if redis is None else redis.url,
            redis_prefix=None if redis is None else redis.channel,
            node_ttl=10.0 if redis is None else redis.node_ttl,
            redis_connect_timeout=5.0 if redis is None else redis.connect_timeout,
            redis_request_timeout=5.0 if redis is None else redis.request_timeout,
            recovery_window=float(recovery.get("max_disconnection_duration", 120.0)) if enabled else None,
            recovery_skip_middlewares=bool(recovery.get("skip_middlewares", False)),
            recovery_max_packets=int(recovery.get("max_packets", 10_000)),
            outbound_queue_messages=outbound_queue_messages,
            outbound_queue_bytes=outbound_queue_bytes,
            overflow=overflow,
            metrics_path=metrics_path,
            max_connections=max_connections,
            max_connections_per_ip=max_connections_per_ip,
            connection_rate_per_ip=connection_rate_per_ip,
            connection_burst_per_ip=connection_burst_per_ip,
        )

    def _register(self, event: str, f: Callable[..., Any], namespace: str) -> None:
        handler = _as_coroutine_function(f)
        if event == "connect":
            self._native.on_connect(handler, namespace)
        elif event == "disconnect":
            self._native.on_disconnect(handler, namespace)
        elif event == "*":
            self._native.on_any(handler, namespace)
        else:
            self._native.on(event, handler, namespace)

    async def emit(
        self,
        event: str,
        data: Any = None,
        to: Union[str, Iterable[str], None] = None,
        room: Union[str, Iterable[str], None] = None,
        skip_sid: Union[str, Iterable[str], None] = None,
        namespace: str = "/",
        callback: Optional[Callable[..., Any]] = None,
        volatile: bool = False,
    ) -> None:
        """Send ``event`` to a sid or room (``to``/``room``), or to everyone.

        A tuple ``data`` sends several arguments, as in python-socketio. With
        ``callback``, ``to`` names one client and the callback gets its ack.
        ``volatile`` (socket.io's ``volatile`` flag): clients whose outbound
        queue is full miss it, and it is never replayed by recovery.
        """
        args = _args(data)
        if callback is not None:
            target = to if to is not None else room
            if not isinstance(target, str) or skip_sid is not None or volatile:
                raise InvalidArgumentError("an emit with a callback goes to one client: to=<sid>, not volatile")
            _callback_task(self._native.call(event, args, target, CALLBACK_TIMEOUT, namespace), callback)
            return
        self._native.emit(event, args, _rooms(to) + _rooms(room), _rooms(skip_sid), namespace, volatile)

    async def send(
        self,
        data: Any,
        to: Union[str, Iterable[str], None] = None,
        room: Union[str, Iterable[str], None] = None,
        skip_sid: Union[str, Iterable[str], None] = None,
        namespace: str = "/",
    ) -> None:
        """Send a ``message`` event, as python-socketio's ``send``."""
        await self.emit("message", data, to=to, room=room, skip_sid=skip_sid, namespace=namespace)

    async def call(
        self,
        event: str,
        data: Any = None,
        to: Optional[str] = None,
        sid: Optional[str] = None,
        namespace: str = "/",
        timeout: float = 60,
    ) -> Any:
        """Send ``event`` to one client (in a cluster, on any node) and wait for
        its ack: one argument is returned as is, several as a tuple, none as ``None``."""
        target = to if to is not None else sid
        if target is None:
            raise InvalidArgumentError("call() needs the sid of the client (to=...)")
        args = _args(data)
        return _ack(await self._native.call(event, args, target, timeout, namespace))

    @property
    def _clustered(self) -> bool:
        return self._native.node_id is not None

    async def enter_room(self, sid: str, room: str, namespace: str = "/") -> None:
        """Put client ``sid`` in ``room``; in a cluster, a client of any node
        (done when that node confirmed it)."""
        if not self._native.enter_room(sid, room, namespace) and self._clustered:
            await self._native.sockets_join(room, [sid], [], namespace)

    async def leave_room(self, sid: str, room: str, namespace: str = "/") -> None:
        """Take client ``sid`` out of ``room``; in a cluster, a client of any node."""
        if not self._native.leave_room(sid, room, namespace) and self._clustered:
            await self._native.sockets_leave(room, [sid], [], namespace)

    async def close_room(self, room: str, namespace: str = "/") -> None:
        """Take every client out of ``room`` (in a cluster, on every node)."""
        if self._clustered:
            await self._native.sockets_leave(room, [room], [], namespace)
        else:
            self._native.close_room(room, namespace)

    def rooms(self, sid: str, namespace: str = "/") -> list[str]:
        """The rooms client ``sid`` is in, its own room (named by its sid) first."""
        return self._native.rooms(sid, namespace)

    def recovered(self, sid: str, namespace: str = "/") -> bool:
        """Whether client ``sid`` took its previous connection's session up
        (connection state recovery: same sid, rooms and session, missed
        events replayed); socket.io's ``socket.recovered``."""
        return self._native.recovered(sid, namespace)

    def buffered_amount(self, sid: str, namespace: str = "/") -> int:
        """Bytes queued for client ``sid``'s connection and not yet written
        (like a WebSocket's ``bufferedAmount``); raises ``NotFoundError`` for
        a client not connected to this server."""
        amount = self._native.buffered_amount(sid, namespace)
        if amount is None:
            raise NotFoundError(f"no client {sid} in namespace {namespace} on this server")
        return amount

    async def drained(self, sid: str, namespace: str = "/") -> None:
        """Return once nothing is buffered for client ``sid`` (at once if
        nothing is, or when it disconnects): the drain notification of a
        sender that paces itself by ``buffered_amount``."""
        await self._native.drained(sid, namespace)

    async def disconnect(self, sid: str, namespace: str = "/", *, close: bool = False) -> None:
        """Disconnect client ``sid`` from ``namespace`` (in a cluster, a client
        of any node); with ``close`` (a roomcast extension), from every
        namespace, closing its connection."""
        if not self._native.disconnect(sid, namespace, close) and self._clustered:
            await self._native.disconnect_sockets([sid], [], close, namespace)

    async def fetch_sockets(
        self,
        room: Union[str, Iterable[str], None] = None,
        namespace: str = "/",
        *,
        skip_sid: Union[str, Iterable[str], None] = None,
    ) -> PartialList[dict[str, Any]]:
        """The clients in ``room`` (a room or sid, or several; every client
        when ``None``) but not in ``skip_sid``, on every node of the cluster:
        one dict per client with ``id``, ``node`` (its node id, ``None``
        without a ``client_manager``), ``namespace``, ``userId``, ``rooms``
        (its own room first), ``data`` and ``handshake`` (``headers``,
        ``query`` as ``[key, value]`` pairs, ``address``, ``path``, ``auth``)."""
        found, missing = await self._native.fetch_sockets(_rooms(room), _rooms(skip_sid), namespace)
        return PartialList(found, missing)

    async def sockets_join(
        self,
        room: str,
        to: Union[str, Iterable[str], None] = None,
        namespace: str = "/",
        *,
        skip_sid: Union[str, Iterable[str], None] = None,
    ) -> PartialCount:
        """Put the clients in ``to`` (rooms or sids; everyone when ``None``) but
        not in ``skip_sid``, on every node, in ``room``; returns how many."""
        joined, missing = await self._native.sockets_join(room, _rooms(to), _rooms(skip_sid), namespace)
        return PartialCount(joined, missing)

    async def sockets_leave(
        self,
        room: str,
        to: Union[str, Iterable[str], None] = None,
        namespace: str = "/",
        *,
        skip_sid: Union[str, Iterable[str], None] = None,
    ) -> PartialCount:
        """Take the clients in ``to`` but not in ``skip_sid``, on every node,
        out of ``room``; returns how many."""
        left, missing = await self._native.sockets_leave(room, _rooms(to), _rooms(skip_sid), namespace)
        return PartialCount(left, missing)

    async def disconnect_sockets(
        self,
        to: Union[str, Iterable[str], None] = None,
        namespace: str = "/",
        *,
        skip_sid: Union[str, Iterable[str], None] = None,
        close: bool = False,
    ) -> PartialCount:
        """Disconnect the clients in ``to`` but not in ``skip_sid`` on every
        node (``close``: from every namespace, closing their connections);
        returns how many."""
        gone, missing = await self._native.disconnect_sockets(_rooms(to), _rooms(skip_sid), close, namespace)
        return PartialCount(gone, missing)

    async def call_everywhere(
        self,
        event: str,
        data: Any = None,
        to: Union[str, Iterable[str], None] = None,
        room: Union[str, Iterable[str], None] = None,
        skip_sid: Union[str, Iterable[str], None] = None,
        namespace: str = "/",
        timeout: float = 60,
    ) -> AckReplies:
        """Send ``event`` as ``emit`` does (to everyone, or to ``to``/``room``)
        on every node and wait, at most ``timeout`` seconds, for each client's
        ack: ``{sid: ack}``; ``errors`` names the clients without one and
        ``missing`` the nodes that did not report within ``timeout`` plus the
        request timeout."""
        replies, missing = await self._native.call_everywhere(
            event, _args(data), _rooms(to) + _rooms(room), _rooms(skip_sid), float(timeout), namespace
        )
        acks = [(sid, _ack(reply)) for sid, reply, error in replies if reply is not None]
        errors = {sid: error for sid, reply, error in replies if error is not None}
        return AckReplies(acks, missing, errors)

    async def rooms_everywhere(self, namespace: str = "/") -> PartialList[str]:
        """The rooms joined by name (not the clients' own rooms) on every node, sorted."""
        rooms, missing = await self._native.rooms_everywhere(namespace)
        return PartialList(rooms, missing)

    async def count_everywhere(self, namespace: str = "/") -> PartialCount:
        """How many clients ``namespace`` has on every node."""
        count, missing = await self._native.count_everywhere(namespace)
        return PartialCount(count, missing)

    async def nodes(self) -> list[str]:
        """The node ids of the cluster (this server's too), sorted; ``[]``
        without a ``client_manager``."""
        return await self._native.nodes()

    @overload
    def on_server_event(self, event: str) -> Callable[[Handler], Handler]: ...

    @overload
    def on_server_event(self, event: str, handler: Handler) -> Handler: ...

    def on_server_event(self, event: str, handler: Optional[Handler] = None) -> Any:
        """Register ``handler(*args)`` for the server event ``event`` that
        another node sends with ``server_emit``; its return value is the reply
        (as an ack: ``None`` none, a tuple several arguments). Sync or async;
        usable as a decorator: ``@sio.on_server_event("reload")``. Never
        called without a ``client_manager``."""

        def register(f: Handler) -> Handler:
            self._native.on_server_event(event, _as_coroutine_function(f))
            return f

        return register if handler is None else register(handler)

    async def server_emit(self, event: str, data: Any = None) -> PartialDict[Any]:
        """Send ``event`` to every other node's ``on_server_event`` handler and
        wait (at most the request timeout) for their replies: ``{node_id:
        reply}`` (one argument as is, several as a tuple, none as ``None``).
        A node without a handler for ``event`` is in neither the dict nor
        ``missing``. Without a ``client_manager``, empty: nothing is sent."""
        replies, missing = await self._native.server_emit(event, _args(data))
        return PartialDict(((node, _ack(reply)) for node, reply in replies), missing)

    async def get_session(self, sid: str, namespace: str = "/") -> Any:
        """The session of client ``sid``: a dict that lives as long as its connection."""
        return self._native.get_session(sid, namespace)

    async def save_session(self, sid: str, session: Any, namespace: str = "/") -> None:
        """Replace the session of client ``sid``."""
        self._native.save_session(sid, session, namespace)

    @contextlib.asynccontextmanager
    async def session(self, sid: str, namespace: str = "/") -> AsyncIterator[Any]:
        """``async with sio.session(sid) as session:`` edits and saves the session."""
        session = await self.get_session(sid, namespace)
        yield session
        await self.save_session(sid, session, namespace)

    def enable_presence(self, room: Optional[str] = None, namespace: str = "/") -> None:
        """Track presence in ``room``, or in every named room of ``namespace``:
        its members get ``presence:join``, ``presence:leave`` and
        ``presence:update`` events. Rooms already joined count from their next join."""
        self._native.enable_presence(room, namespace)

    async def presence(self, room: str, namespace: str = "/") -> list[dict[str, Any]]:
        """The members of ``room`` (on every node): one dict per user with
        ``userId``, ``connections``, ``meta``, ``joinedAt`` and ``lastSeen``
        (``anonymous: True`` for a socket without a user id)."""
        members: list[dict[str, Any]] = await self._native.presence(room, namespace)
        return members

    async def presence_count(self, room: str, namespace: str = "/") -> int:
        """How many members ``room`` has (on every node)."""
        count: int = await self._native.presence_count(room, namespace)
        return count

    async def is_online(self, user_id: str) -> bool:
        """Whether ``user_id`` has a connection (on any node)."""
        online: bool = await self._native.is_online(user_id)
        return online

    async def online_users(self, user_ids: Iterable[str]) -> dict[str, bool]:
        """``{user_id: online}`` for each of ``user_ids``, in one query."""
        return dict(await self._native.online_users(list(user_ids)))

    def set_user_id(self, sid: str, user_id: str, namespace: str = "/") -> None:
        """Name the user of client ``sid``, from its ``connect`` handler (before
        it joins rooms): its connections are one member in presence, it counts
        for ``is_online`` and it is in the room ``user:<user_id>``."""
        self._native.set_user_id(sid, user_id, namespace)

    def get_user_id(self, sid: str, namespace: str = "/") -> Optional[str]:
        """The user of client ``sid``, if one was named."""
        return self._native.get_user_id(sid, namespace)

    def set_presence(self, sid: str, meta: dict[str, Any], namespace: str = "/") -> None:
        """Replace the presence metadata of client ``sid``: a dict whose
        ``status`` is ``"online"`` (the default), ``"away"`` or ``"busy"``. Its
        rooms with presence get ``presence:update``."""
        self._native.set_presence(sid, meta, namespace)

    def get_presence(self, sid: str, namespace: str = "/") -> dict[str, Any]:
        """The presence metadata of client ``sid``."""
        return self._native.get_presence(sid, namespace)

    def on_node_lost(self, handler: Optional[Handler] = None) -> Any:
        """Register ``handler(info)`` for each client of a cluster node found
        dead, called once, on the node that cleaned up after it; ``info`` is
        ``{"node", "namespace", "sid", "userId"}``. Usable as a decorator;
        never called without a ``client_manager``."""

        def register(f: Handler) -> Handler:
            self._native.on_node_lost(_as_coroutine_function(f))
            return f

        return register if handler is None else register(handler)

    @property
    def node_id(self) -> Optional[str]:
        """This server's node id in the cluster (``None`` without a ``client_manager``)."""
        return self._native.node_id

    def stats(self) -> dict[str, int]:
        """The server's counters now: ``sockets``, ``rooms``, ``users``,
        ``messages_in``/``_out``, ``bytes_in``/``_out``, ``dropped``,
        ``slow_consumer_closes``, ``rate_limited``, ``refused_connections``,
        ``connections``, ``ack_timeouts``, ``recovery_hits``/``_misses``,
        ``retries_deduplicated``, and in a cluster
        ``cluster_messages_in``/``_out``, ``cluster_errors`` (failed Redis
        writes and lost messages, e.g. during an outage) and
        ``cluster_request_timeouts`` (queries answered partially)."""
        return self._native.stats()

    def metrics(self) -> str:
        """The counters and gauges in the Prometheus text format (OpenMetrics),
        as served at ``metrics_path``."""
        return self._native.metrics()

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the port."""
        port_bound: int = await self._native.listen(host, port)
        return port_bound

    def run(self, host: str = "127.0.0.1", port: int = 5000) -> None:
        """Serve until interrupted (Ctrl-C), then shut down cleanly."""

        async def main() -> None:
            await self.serve(host, port)
            try:
                await asyncio.Event().wait()
            finally:
                await self.shutdown()

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass

    async def shutdown(self) -> None:
        """Close every connection and stop listening."""
        await self._native.shutdown()
        self._native.detach()


class AsyncClient(_Handlers):
    """A Socket.IO client, shaped like python-socketio's ``AsyncClient``.

    It reconnects with socket.io-client's backoff and buffers emits while the
    connection is down. WebSocket transport only; each namespace connects
    over a connection of its own.
    """

    def __init__(
        self,
        *,
        reconnection: bool = True,
        reconnection_attempts: int = 0,
        reconnection_delay: float = 1,
        reconnection_delay_max: float = 5,
        randomization_factor: float = 0.5,
        retries: int = 0,
        ack_timeout: float = 10,
    ) -> None:
        """``retries`` and ``ack_timeout`` (socket.io-client's options, roomcast
        extensions here) make emits at least once: each asks for an ack and
        they go out one at a time, in order; one not acked within
        ``ack_timeout`` seconds is sent again, up to ``retries`` more times,
        and one whose connection dropped is sent again on the next. A roomcast
        server runs each such event once however often it arrives."""
        self._options = {
            "reconnection": reconnection,
            "reconnection_attempts": reconnection_attempts,
            "reconnection_delay": float(reconnection_delay),
            "reconnection_delay_max": float(reconnection_delay_max),
            "randomization_factor": randomization_factor,
            "retries": retries,
            "ack_timeout": float(ack_timeout),
        }
        # Handlers per namespace, kept until connect(): the native client needs the URL.
        self._handlers: dict[str, dict[str, Callable[..., Awaitable[Any]]]] = {}
        self._clients: dict[str, _native.Client] = {}

    def _register(self, event: str, f: Callable[..., Any], namespace: str) -> None:
        """Handlers (also ``connect``, ``disconnect``, ``connect_error`` and
        ``"*"``) wait for connect(), which knows the URL."""
        if self._clients:
            raise InvalidArgumentError("register handlers before connect()")
        self._handlers.setdefault(namespace, {})[event] = _as_coroutine_function(f)

    async def connect(
        self,
        url: str,
        headers: Optional[dict[str, str]] = None,
        auth: Any = None,
        transports: Optional[Iterable[str]] = None,
        namespaces: Union[str, Iterable[str], None] = None,
        socketio_path: str = "socket.io",
        wait_timeout: float = 20,
    ) -> None:
        """Connect to ``namespaces`` of ``url`` (by default those with handlers,
        or ``/``); raises a server's refusal as a ``RoomcastError`` and then
        leaves no namespace connected."""
        if self._clients:
            raise InvalidArgumentError("already connected: disconnect() first")
        if transports is not None and "websocket" not in transports:
            raise InvalidArgumentError("roomcast's client speaks the websocket transport only")
        wanted = _rooms(namespaces) or list(self._handlers) or ["/"]
        for namespace in wanted:
            self._clients[namespace] = self._client_for(url, namespace, headers, auth, socketio_path, wait_timeout)
        try:
            await asyncio.gather(*(client.open() for client in self._clients.values()))
        except BaseException:
            await self.disconnect()
            raise

    def _client_for(
        self,
        url: str,
        namespace: str,
        headers: Optional[dict[str, str]],
        auth: Any,
        socketio_path: str,
        wait_timeout: float,
    ) -> _native.Client:
        """A native client of one namespace, with that namespace's handlers."""
        native = _native.Client(
            url.rstrip("/") + ("" if namespace == "/" else namespace),
            path="/" + socketio_path.strip("/") + "/",
            auth=auth,
            headers=list((headers or {}).items()),
            connect_timeout=float(wait_timeout),
            **self._options,  # type: ignore[arg-type]
        )
        handlers = self._handlers.get(namespace, {})
        lifecycle: dict[str, Callable[..., Awaitable[Any]]] = {k: handlers[k] for k in ("connect", "disconnect", "connect_error") if k in handlers}
        for event, handler in handlers.items():
            if event == "*":
                native.on_any(handler)
            elif event not in lifecycle:
                native.on(event, handler)

        async def on_lifecycle(kind: str, detail: Any) -> None:
            handler = lifecycle.get(kind)
            if handler is None:
                return
            if kind == "connect":
                await handler()
            else:
                await handler(detail)

        native.on_lifecycle(on_lifecycle)
        return native

    def _client(self, namespace: str) -> _native.Client:
        client = self._clients.get(namespace)
        if client is None:
            raise ClosedError(f"namespace {namespace} is not connected: call connect() first")
        return client

    @property
    def sid(self) -> Optional[str]:
        """The socket id of ``/`` (or the only namespace) while connected."""
        client = self._clients.get("/") or next(iter(self._clients.values()), None)
        return None if client is None else client.sid

    def recovered(self, namespace: str = "/") -> bool:
        """Whether the connection to ``namespace`` took the previous one's
        session up (the server has connection state recovery on); the
        events missed meanwhile were delivered, without their offsets."""
        client = self._clients.get(namespace)
        return client is not None and client.recovered

    def get_sid(self, namespace: str = "/") -> Optional[str]:
        """The socket id in ``namespace`` while connected."""
        client = self._clients.get(namespace)
        return None if client is None else client.sid

    @property
    def namespaces(self) -> list[str]:
        """The namespaces connected now."""
        return [namespace for namespace, client in self._clients.items() if client.connected]

    @property
    def connected(self) -> bool:
        return bool(self._clients) and all(client.connected for client in self._clients.values())

    async def emit(
        self, event: str, data: Any = None, namespace: str = "/", callback: Optional[Callable[..., Any]] = None
    ) -> None:
        """Send ``event``; a tuple ``data`` sends several arguments. With
        ``callback``, it gets the server's ack."""
        client = self._client(namespace)
        if callback is not None:
            _callback_task(client.call(event, _args(data), CALLBACK_TIMEOUT), callback)
            return
        client.emit(event, _args(data))

    async def send(self, data: Any, namespace: str = "/", callback: Optional[Callable[..., Any]] = None) -> None:
        """Send a ``message`` event, as python-socketio's ``send``."""
        await self.emit("message", data, namespace=namespace, callback=callback)

    async def call(self, event: str, data: Any = None, namespace: str = "/", timeout: float = 60) -> Any:
        """Send ``event`` and wait for the server's ack (one argument as is,
        several as a tuple, none as ``None``)."""
        args = _args(data)
        return _ack(await self._client(namespace).call(event, args, float(timeout)))

    async def wait(self) -> None:
        """Wait until every namespace is disconnected for good."""
        await asyncio.gather(*(client.wait() for client in self._clients.values()))

    async def disconnect(self) -> None:
        """Leave every namespace and close the connections."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
            client.detach()
