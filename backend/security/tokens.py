"""Short-lived signed access tokens (JWT, HS256) for admins, editors and shoppers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
ISSUER = "shopwise"


class TokenError(Exception):
    """The token is missing, malformed, expired or not signed by us."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str  # admin username, or a shopper's user id ("guest:<id>" for guests)
    role: str  # "admin" | "editor" | "shopper"
    expires_at: datetime


def issue(subject: str, role: str, *, secret: str, ttl: timedelta) -> tuple[str, datetime]:
    expires = datetime.now(UTC) + ttl
    payload = {
        "sub": subject,
        "role": role,
        "iss": ISSUER,
        "exp": expires,
        "iat": datetime.now(UTC),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), expires


def verify(token: str, *, secret: str) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "role", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    return TokenClaims(
        subject=str(payload["sub"]),
        role=str(payload["role"]),
        expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
    )
