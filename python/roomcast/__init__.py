"""roomcast: real-time messaging with a native Rust core.

``AsyncServer`` follows python-socketio's ``AsyncServer``: handlers are
registered with ``@sio.event`` / ``@sio.on(...)``, take ``(sid, *args)`` and
return the ack. The protocol work happens in Rust; this module only adapts
arguments.
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, Iterable, Optional, TypeVar, Union

from . import _native
from ._native import (
    ClosedError,
    ConfigError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PayloadTooLargeError,
    ProtocolError,
    QueueFullError,
    RateLimitedError,
    RefusedError,
    RoomcastError,
    RoomcastIOError,
    TimeoutError,
    UnauthorizedError,
)

__version__ = _native.__version__

__all__ = [
    "AsyncServer",
    "ClosedError",
    "ConfigError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ProtocolError",
    "QueueFullError",
    "RateLimitedError",
    "RefusedError",
    "RoomcastError",
    "RoomcastIOError",
    "TimeoutError",
    "UnauthorizedError",
]

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
            self._native.on(event, _as_coroutine_function(f), namespace)
            return f

        if handler is None:
            return register
        register(handler)
        return None

    def event(self, handler: Handler) -> Handler:
        """Register a handler for the event named like the function."""
        self._native.on(handler.__name__, _as_coroutine_function(handler), "/")
        return handler

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

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the port."""
        port_bound: int = await self._native.listen(host, port)
        return port_bound

    async def shutdown(self) -> None:
        """Close every connection and stop listening."""
        await self._native.shutdown()
