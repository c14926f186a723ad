"""Real services: PostgreSQL and the shared Redis, plus Redis servers of a test's own.

Tests that stop or restart Redis start a throwaway ``redis-server`` on a free loopback port
and never touch the shared server on 6379.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import Engine

from backend.config import PROJECT_ROOT, Settings, load_settings
from backend.wiring import Components, build_components
from tests.conftest import migrated_engine, service_unavailable
from tests.factories import Shop, build_shop
from tests.waiting import free_port

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


class RedisProcess:
    """A redis-server subprocess without persistence, stoppable and restartable."""

    def __init__(self, executable: str, port: int, workdir: Path) -> None:
        self.executable, self.port, self.workdir = executable, port, workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    executable = shutil.which("redis-server")
    if executable is None:
        service_unavailable("redis-server", FileNotFoundError("redis-server not on PATH"))
        raise AssertionError("unreachable")
    server = RedisProcess(executable, free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    engine = migrated_engine(postgres_url)  # a copy of the migrated template (postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_shop(pg_engine: Engine) -> Shop:
    return build_shop(pg_engine)


def redis_settings(
    tmp_path: Path, database_url: str, redis_url: str, prefix: str, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "_env_file": None,
        "data_dir": tmp_path,
        "database_url": database_url,
        "redis_url": redis_url,
        "redis_key_prefix": prefix,
        "redis_retry_seconds": 0.2,
        "worker_claim_idle_seconds": 0.5,
        "snapshot_refresh_seconds": 0,
        "prompts_dir": PROJECT_ROOT / "prompts",
    }
    return load_settings(**(values | overrides))


@pytest.fixture
def redis_components(
    tmp_path: Path, postgres_url: str, pg_shop: Shop, redis_url: str, redis_prefix: str
) -> Iterator[Components]:
    """The API's components on PostgreSQL and the shared Redis (under a prefix of its own)."""
    built = build_components(redis_settings(tmp_path, postgres_url, redis_url, redis_prefix))
    yield built
    built.db.dispose()


class TcpProxy:
    """A loopback TCP proxy in front of PostgreSQL that a test can cut and restore.

    ``cut()`` closes every forwarded connection and refuses new ones (the database looks
    unreachable); ``restore()`` forwards again. Threads only: tiny and dependency-free.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.up = True
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="pg-proxy", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets.update((client, server))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with self._lock:
                self._sockets.discard(sock)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def cut(self) -> None:
        self.up = False
        with self._lock:
            open_sockets = list(self._sockets)
        self._drop(*open_sockets)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._thread.join(timeout=5)
        self._listener.close()
