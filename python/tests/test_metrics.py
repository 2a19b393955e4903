"""Observability through the Python API: ``metrics_path`` serves the
Prometheus metrics, ``metrics()`` returns the same text, and ``stats()`` has
the connection, ack-timeout and recovery counters."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

import roomcast
from helpers import bounded

pytestmark = pytest.mark.asyncio(loop_scope="function")


def fetch(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as res:
            return res.status, res.headers.get("content-type", ""), res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, "", ""


@bounded(30)
async def test_metrics_path_serves_prometheus_metrics_and_stats_has_the_counters() -> None:
    sio = roomcast.AsyncServer(metrics_path="/metrics")

    @sio.event
    async def connect(sid: str, environ: dict[str, str], auth: object) -> None:
        await sio.enter_room(sid, "r")

    port = await sio.serve("127.0.0.1", 0)
    client = roomcast.AsyncClient(reconnection=False)

    @client.on("q")
    async def on_q() -> None:
        await asyncio.sleep(10)  # answers far too late

    try:
        await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
        with pytest.raises(roomcast.TimeoutError):
            await sio.call("q", to=client.sid, timeout=0.05)
        status, kind, text = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and kind.startswith("application/openmetrics-text")
        lines = text.splitlines()
        for line in [
            "roomcast_connections 1",
            'roomcast_sockets{namespace="/"} 1',
            'roomcast_recovery_sessions{namespace="/"} 0',
            "roomcast_ack_timeouts_total 1",
        ]:
            assert line in lines, text
        # The runtime's tasks: the accept loop and the session at least.
        tasks = [int(line.split()[1]) for line in lines if line.startswith("roomcast_runtime_tasks ")]
        assert len(tasks) == 1 and tasks[0] >= 2, text
        assert "roomcast_ack_timeouts_total 1" in sio.metrics()
        stats = sio.stats()
        assert (stats["connections"], stats["ack_timeouts"], stats["recovery_hits"], stats["retries_deduplicated"]) == (
            1,
            1,
            0,
            0,
        )
    finally:
        await client.disconnect()
        await sio.shutdown()


@bounded(30)
async def test_no_metrics_without_metrics_path() -> None:
    sio = roomcast.AsyncServer()
    port = await sio.serve("127.0.0.1", 0)
    try:
        status, _, _ = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
        assert status == 404
    finally:
        await sio.shutdown()
