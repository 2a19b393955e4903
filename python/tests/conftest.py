"""Fixtures shared by the cluster suites: redis-servers of the test's own on
free ports (a single server, which a test can kill and start again, and a
3-master Redis Cluster). A test fails when they cannot start."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from typing import Iterator, Optional

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cluster_port() -> int:
    """A free port for a Redis Cluster node: Redis also listens on port + 10000
    (its cluster bus), so the port must be at most 55535 and that one free too."""
    while True:
        port = free_port()
        if port <= 55535:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server on ``port`` (extra arguments after the defaults), up once constructed."""

    def __init__(self, port: Optional[int] = None, extra: tuple[str, ...] = (), cwd: Optional[str] = None) -> None:
        self.port = port or free_port()
        self.extra, self.cwd = extra, cwd
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.restart()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def restart(self) -> None:
        """Start it (again, empty) on the same port."""
        self.kill()
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        try:
            server = subprocess.Popen([*args, *self.extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.cwd)
        except OSError as e:
            pytest.fail(f"cannot start redis-server (apt-get install redis-server): {e}")
        self.process = server
        deadline = time.monotonic() + 10
        while not ping(self.port):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                output = server.communicate()[0].decode(errors="replace")
                pytest.fail(f"redis-server did not start on port {self.port}:\n{output}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL it and reap it (nothing when not running)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own on a free port."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_cluster_url() -> Iterator[str]:
    """A 3-master Redis Cluster (``redis-server --cluster-enabled`` joined by
    ``redis-cli --cluster create``) as a ``redis-cluster://`` URL naming every master."""
    with tempfile.TemporaryDirectory(prefix="roomcast-redis-cluster-") as workdir:
        masters: list[RedisServer] = []
        try:
            while len(masters) < 3:
                port = cluster_port()
                if any(m.port == port for m in masters):
                    continue
                conf = ("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf")
                masters.append(RedisServer(port, conf, workdir))
            nodes = [f"127.0.0.1:{m.port}" for m in masters]
            created = subprocess.run(
                ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True,
                timeout=30,
            )
            if created.returncode != 0:
                pytest.fail(f"redis-cli --cluster create failed: {created.stdout!r} {created.stderr!r}")
            deadline = time.monotonic() + 20
            for m in masters:
                while b"cluster_state:ok" not in subprocess.run(
                    ["redis-cli", "-p", str(m.port), "cluster", "info"], capture_output=True, timeout=5
                ).stdout:
                    if time.monotonic() > deadline:
                        pytest.fail("the Redis Cluster did not become ready")
                    time.sleep(0.1)
            rest = "&".join(f"node=127.0.0.1:{m.port}" for m in masters[1:])
            yield f"redis-cluster://127.0.0.1:{masters[0].port}?{rest}"
        finally:
            for m in masters:
                m.kill()
