"""Several API processes, each accepting on a listening socket of its own (``SO_REUSEPORT``).

uvicorn's ``--workers N`` binds one socket in the parent and hands it to every worker
process. Whichever process wakes first accepts everything queued (uvloop accepts until the
queue is empty), so a burst of keep-alive connections (a storefront opening its pool) lands
mostly on one process: 16 connections split 16/0, 14/2 or 13/3 in half of ten tries, and
the profile of server mode showed the two processes at 0.42 and 0.19 cores.

With a socket per process bound with ``SO_REUSEPORT`` the kernel spreads new connections
across the listening sockets by a hash of each connection's addresses and ports: no
process can take another's share (a random split, not a count: 16 connections went 8/8 to
12/4, 9/7 or 10/6 most often). The parent still binds the address first (without
listening), so a taken port fails at once, port 0 resolves to one port for all, and no
other user's process can join the group.

Everything else stays uvicorn's own supervisor (``Multiprocess``): health checks, restarts
of a dead worker, ``SIGHUP``, graceful shutdown. The one seam is how the parent's socket
travels to a worker: uvicorn pickles it into each new process, and :class:`Reservation`
pickles as "bind another socket on this address" instead of as a copy of itself.

A worker's socket starts listening only when its app has started (uvicorn's
``create_server`` calls ``listen``), so no connection waits for a process still warming
up. Costs: connections already queued on a worker's socket when that worker stops are
reset, where a shared socket would have kept them for the others (Linux >= 5.14 moves
them with ``net.ipv4.tcp_migrate_req = 1``); and a worker whose event loop hangs keeps
receiving its share of new connections until the supervisor's health check replaces it.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any, SupportsIndex

if TYPE_CHECKING:
    from uvicorn import Config

log = logging.getLogger(__name__)


class Reservation(socket.socket):
    """The parent's socket on the address: bound, never listening, so the kernel hands it no
    connection; each worker process receives a fresh bound socket in its place."""

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        host, port = self.getsockname()[:2]
        return (own_socket, (int(self.family), host, port))


def reserve(host: str, port: int) -> Reservation:
    """Bind the address for the workers (port 0: a free port, the same for all of them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = Reservation(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    _share(sock)
    sock.bind((host, port))
    return sock


def own_socket(family: int, host: str, port: int) -> socket.socket:
    """A worker's socket on the reserved address, bound but not yet listening."""
    sock = socket.socket(socket.AddressFamily(family), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    _share(sock)
    sock.bind((host, port))
    return sock


def _share(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, as uvicorn
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def run_workers(config: Config) -> None:
    """``uvicorn.run`` for ``config.workers`` > 1 (the app given as an import string), each
    worker on a socket of its own."""
    from uvicorn.supervisors import Multiprocess

    sock = reserve(config.host, config.port)
    host, port = sock.getsockname()[:2]
    log.info("serving on http://%s:%d with %d processes", host, port, config.workers)
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
