"""A cluster node in a process of its own, for the tests to kill or freeze.

Usage: presence_node.py REDIS_URL CHANNEL [NODE_TTL]. Prints "<port> <node id>"
once serving. NODE_TTL (seconds, default 1) is how long the node may be
silent before the others call it dead; the server event ``whoami`` answers
with its node id.
"""

from __future__ import annotations

import asyncio
import sys

import roomcast
from helpers import users_and_rooms  # next to this script, on its sys.path


async def main(url: str, channel: str, node_ttl: float) -> None:
    sio = roomcast.AsyncServer(client_manager=roomcast.AsyncRedisManager(url, channel, node_ttl=node_ttl))
    sio.enable_presence()
    users_and_rooms(sio)

    @sio.on_server_event("whoami")
    def whoami() -> object:
        return sio.node_id

    port = await sio.serve("127.0.0.1", 0)
    print(port, sio.node_id, flush=True)
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 1.0))
