"""examples/python/chat.py, driven by two python-socketio clients: rooms and presence."""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib

import pytest
import socketio

pytestmark = pytest.mark.asyncio(loop_scope="function")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python" / "chat.py"


def load_chat():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("chat_example", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_chat_with_rooms() -> None:
    sio = load_chat().create_server()
    port = await sio.serve("127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}"
    ada, bob = socketio.AsyncClient(reconnection=False), socketio.AsyncClient(reconnection=False)
    heard: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    for name, client in (("ada", ada), ("bob", bob)):
        for event in ("joined", "said", "left", "typing"):
            client.on(event, lambda data, n=name, e=event: heard.put_nowait((f"{n}:{e}", data)))
    # What presence tells Ada, on a queue of its own.
    presence: asyncio.Queue[tuple[str, dict[str, object]]] = asyncio.Queue()
    for event in ("presence:join", "presence:leave", "presence:update"):
        ada.on(event, lambda data, e=event: presence.put_nowait((e, data)))
    def online(name: str) -> dict[str, str]:
        return {"name": name, "status": "online"}

    try:
        nameless = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await asyncio.wait_for(nameless.connect(url, transports=["websocket"], auth={}), 10)
        await asyncio.wait_for(ada.connect(url, transports=["websocket"], auth={"name": "Ada"}), 10)
        await asyncio.wait_for(bob.connect(url, transports=["websocket"], auth={"name": "Bob"}), 10)
        assert await ada.call("join", {"room": "rust"}, timeout=10) == {"ok": True, "rooms": ["rust"]}
        await bob.call("join", {"room": "rust"}, timeout=10)
        assert await asyncio.wait_for(heard.get(), 10) == ("ada:joined", {"room": "rust", "name": "Bob"})
        kind, member = await asyncio.wait_for(presence.get(), 10)
        assert (kind, member["userId"]) == ("presence:join", "Bob")
        assert await ada.call("who", {"room": "rust"}, timeout=10) == [online("Ada"), online("Bob")]
        await bob.emit("typing", {"room": "rust"})
        assert await asyncio.wait_for(heard.get(), 10) == ("ada:typing", {"room": "rust", "name": "Bob"})
        assert await bob.call("status", {"status": "away"}, timeout=10) is True
        kind, member = await asyncio.wait_for(presence.get(), 10)
        assert (kind, member["userId"], member["meta"]) == ("presence:update", "Bob", {"status": "away"})
        assert await bob.call("status", {"status": "asleep"}, timeout=10) is False
        bob_away = {"name": "Bob", "status": "away"}
        assert await ada.call("who", {"room": "rust"}, timeout=10) == [online("Ada"), bob_away]
        assert await bob.call("say", {"room": "rust", "text": "hi"}, timeout=10) is True
        said = sorted([await asyncio.wait_for(heard.get(), 10), await asyncio.wait_for(heard.get(), 10)])
        message = {"room": "rust", "name": "Bob", "text": "hi"}
        assert said == [("ada:said", message), ("bob:said", message)]
        assert await ada.call("say", {"room": "elsewhere", "text": "x"}, timeout=10) is False
        await bob.emit("leave", {"room": "rust"})
        assert await asyncio.wait_for(heard.get(), 10) == ("ada:left", {"room": "rust", "name": "Bob"})
        kind, member = await asyncio.wait_for(presence.get(), 10)
        assert (kind, member["userId"]) == ("presence:leave", "Bob")
    finally:
        await ada.disconnect()
        await bob.disconnect()
        await sio.shutdown()
