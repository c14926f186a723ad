"""The client's address: the TCP peer, or what a configured proxy says it forwarded.

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only when the
peer is one of our own proxies (``TRUSTED_PROXIES``; none by default, not even loopback).
Each trusted proxy appends the address it received from, so the list is read from the right
and the first hop that is not one of ours is the client; hops further left are the client's
own claims.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses); raises ValueError naming the bad one."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str, forwarded_for: str | None, networks: Sequence[Network]) -> str:
    if not networks or forwarded_for is None or not _trusted(peer, networks):
        return peer
    client = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:  # garbage from the client: the last good hop is what we know
            return client
        client = hop
        if not _trusted(hop, networks):
            return hop
    return client
