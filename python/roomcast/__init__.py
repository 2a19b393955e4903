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
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Optional, TypeVar, Union

from . import _native
from ._native import *  # noqa: F403  (the exception classes)
from ._native import InvalidArgumentError

__version__ = _native.__version__

#: AsyncServer and the exception hierarchy under RoomcastError.
__all__ = ["AsyncServer", *(name for name in _native.__all__ if name.endswith("Error"))]

Handler = TypeVar("Handler", bound=Callable[..., Any])


def _as_coroutine_function(f: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Handlers run on the asyncio loop; a plain function is wrapped so it does too."""
    if inspect.iscoroutinefunction(f):
        return f

    async def call(*args: Any) -> Any:
        return f(*args)

    return call


def _rooms(value: Union[str, Iterable[str], None]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


class AsyncServer:
    """A Socket.IO (and JSON-protocol) server, shaped like python-socketio's."""

    def __init__(
        self,
        *,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_http_buffer_size: int = 1_000_000,
        cors_allowed_origins: Union[str, Iterable[str], None] = None,
    ) -> None:
        self._native = _native.Server(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_payload=max_http_buffer_size,
            allowed_origins=_rooms(cors_allowed_origins),
        )

    def on(self, event: str, handler: Optional[Callable[..., Any]] = None, namespace: str = "/") -> Any:
        """Register ``handler(sid, *args)`` for ``event``; usable as a decorator."""

        def register(f: Handler) -> Handler:
            self._register(event, f, namespace)
            return f

        if handler is None:
            return register
        register(handler)
        return None

    def event(self, handler: Handler) -> Handler:
        """Register a handler for the event named like the function."""
        self._register(handler.__name__, handler, "/")
        return handler

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
    ) -> None:
        """Send ``event`` to a sid or room (``to``/``room``), or to everyone.

        A tuple ``data`` sends several arguments, as in python-socketio.
        """
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        self._native.emit(event, args, _rooms(to) + _rooms(room), _rooms(skip_sid), namespace)

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
        """Send ``event`` to one client and wait for its ack: one argument is
        returned as is, several as a tuple, none as ``None``."""
        target = to if to is not None else sid
        if target is None:
            raise InvalidArgumentError("call() needs the sid of the client (to=...)")
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        reply: list[Any] = await self._native.call(event, args, target, timeout, namespace)
        if not reply:
            return None
        return reply[0] if len(reply) == 1 else tuple(reply)

    async def enter_room(self, sid: str, room: str, namespace: str = "/") -> None:
        """Put client ``sid`` in ``room``."""
        self._native.enter_room(sid, room, namespace)

    async def leave_room(self, sid: str, room: str, namespace: str = "/") -> None:
        """Take client ``sid`` out of ``room``."""
        self._native.leave_room(sid, room, namespace)

    async def close_room(self, room: str, namespace: str = "/") -> None:
        """Take every client out of ``room``."""
        self._native.close_room(room, namespace)

    def rooms(self, sid: str, namespace: str = "/") -> list[str]:
        """The rooms client ``sid`` is in, its own room (named by its sid) first."""
        return self._native.rooms(sid, namespace)

    async def disconnect(self, sid: str, namespace: str = "/") -> None:
        """Disconnect client ``sid`` from ``namespace``."""
        self._native.disconnect(sid, namespace)

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
