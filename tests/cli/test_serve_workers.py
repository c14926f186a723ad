"""``shopwise serve --workers 2``, started for real: each process listens on a socket of its
own, connections land on both, a killed process is replaced, SIGTERM stops them all.

Which process holds a connection is read from Linux's /proc (the socket's inode among the
process's open files), so the app needs no route that reveals its process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fresh_process import PROJECT_ROOT
from tests.waiting import free_port, wait_for

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

LISTEN, ESTABLISHED = "0A", "01"


def tcp_sockets(port: int) -> list[tuple[str, int, int]]:
    """(state, remote port, inode) of the IPv4 sockets whose local port is ``port``.

    /proc/net/tcp is read in pages of the kernel's table while connections come and go, so a
    socket can be listed twice (CI saw 25 of 24): each inode counts once."""
    found: dict[int, tuple[str, int, int]] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
        if int(local.split(":")[1], 16) == port:
            found[inode] = (state, int(remote.split(":")[1], 16), inode)
    return list(found.values())


def owners(pids: list[int]) -> dict[int, int]:
    """Socket inode -> the process (of ``pids``) that has it open."""
    held: dict[int, int] = {}
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue  # gone meanwhile
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                held[int(target[8:-1])] = pid
    return held


def children(pid: int) -> list[int]:
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def listeners(server: subprocess.Popen[bytes], port: int) -> dict[int, int]:
    """The parent's child processes listening on ``port``: pid -> its listening sockets."""
    held = owners(children(server.pid))
    counts: dict[int, int] = {}
    for state, _, inode in tcp_sockets(port):
        if state == LISTEN and inode in held:
            counts[held[inode]] = counts.get(held[inode], 0) + 1
    return counts


def ask(port: int, n: int) -> list[socket.socket]:
    """``n`` open keep-alive connections, each answered once (so each was accepted)."""
    conns = []
    for _ in range(n):
        conn = socket.create_connection(("127.0.0.1", port), timeout=30)
        conn.sendall(b"GET /health/ready HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.recv(64).startswith(b"HTTP/1.1 ")
        conns.append(conn)
    return conns


def holders(server: subprocess.Popen[bytes], port: int, conns: list[socket.socket]) -> list[int]:
    """The process holding each connection's server end (read again while some are missing:
    a read of /proc/net/tcp can also skip a socket that moves in the table meanwhile)."""
    mine = {c.getsockname()[1] for c in conns}
    for _ in range(50):
        held = owners(children(server.pid))
        found = [
            held[inode]
            for state, remote, inode in tcp_sockets(port)
            if state == ESTABLISHED and remote in mine and inode in held
        ]
        if len(found) >= len(conns):
            break
        time.sleep(0.1)
    return found


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REDIS_", "DATABASE_", "PROMETHEUS_"))
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}",
        "DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": "",
        "PYTHONPATH": str(PROJECT_ROOT),
        "LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "backend.cli", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stderr=subprocess.DEVNULL)
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_each_process_listens_and_connections_land_on_both(server):
    proc, port = server
    wait_for(lambda: len(listeners(proc, port)) == 2, "two listening processes", 120)
    assert list(listeners(proc, port).values()) == [1, 1]  # a socket each, not one shared

    conns = ask(port, 24)  # all on one process by chance: 2 in 2**24
    held = holders(proc, port, conns)
    assert len(held) == 24 and len(set(held)) == 2

    # A killed process is replaced, and the replacement takes connections again.
    victim = held[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: len(listeners(proc, port)) == 2 and victim not in listeners(proc, port),
        "the replacement process",
        120,
    )
    for conn in conns:
        conn.close()
    replacement = (set(listeners(proc, port)) - set(held)).pop()
    conns = ask(port, 24)
    assert replacement in holders(proc, port, conns)

    # SIGTERM: the parent stops every process and exits cleanly.
    for conn in conns:
        conn.close()
    workers = list(listeners(proc, port))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
