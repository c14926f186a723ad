"""Storefront API keys: ``sw_<prefix>_<secret>``; only an HMAC of the secret is stored.

Keys carry 256 bits of randomness, so a keyed SHA-256 is enough (no slow hash needed) and
lets every request be checked in microseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    READ_RECOMMENDATIONS = "recommendations:read"
    WRITE_EVENTS = "events:write"
    MANAGE_CATALOG = "catalog:write"
    READ_USERS = "users:read"
    READ_METRICS = "metrics:read"
    # Mint shopper tokens (``POST /auth/shopper-session``): the storefront vouches that the
    # person holding the token is that shopper. A token never does more than its key could.
    ACT_FOR_SHOPPERS = "shoppers:act"
    ERASE_USERS = "users:erase"  # GDPR erasure (``DELETE /users/{id}``)


# What a shopper token may carry: the minting key's scopes among these, used for the
# shopper's own user only. Minting tokens, the catalog and metrics never pass to a shopper.
SHOPPER_SCOPES: frozenset[str] = frozenset(
    s.value
    for s in (Scope.READ_RECOMMENDATIONS, Scope.WRITE_EVENTS, Scope.READ_USERS, Scope.ERASE_USERS)
)


@dataclass(frozen=True, slots=True)
class NewKey:
    prefix: str
    secret_hash: str
    plaintext: str  # shown once to whoever created it, never stored


def generate_key(pepper: bytes) -> NewKey:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(
        prefix=prefix, secret_hash=digest(secret, pepper), plaintext=f"sw_{prefix}_{secret}"
    )


def split_key(presented: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "sw" or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1], parts[2]


def digest(secret: str, pepper: bytes) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def matches(secret: str, secret_hash: str, pepper: bytes) -> bool:
    return hmac.compare_digest(digest(secret, pepper), secret_hash)
