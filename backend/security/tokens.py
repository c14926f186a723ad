"""Short-lived signed access tokens (JWT, HS256) for admins, editors and shoppers.

The signature proves we issued a token; whether it is still good (not revoked, its key not
revoked) is the database's answer, looked up by the token's id (``jti``) in services.auth.
"""

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
    token_id: str  # jti: the row in ``auth_token`` that says whether it still counts
    minted_by: str | None = None  # azp: the id of the API key that minted a shopper token


@dataclass(frozen=True, slots=True)
class Issued:
    token: str
    token_id: str
    expires_at: datetime


def issue(
    subject: str, role: str, *, secret: str, ttl: timedelta, minted_by: str | None = None
) -> Issued:
    now = datetime.now(UTC)
    token_id = uuid.uuid4().hex
    payload: dict[str, object] = {
        "sub": subject,
        "role": role,
        "iss": ISSUER,
        "exp": now + ttl,
        "iat": now,
        "jti": token_id,
    }
    if minted_by is not None:
        payload["azp"] = minted_by
    return Issued(jwt.encode(payload, secret, algorithm=ALGORITHM), token_id, now + ttl)


def verify(token: str, *, secret: str) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "role", "iss", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    return TokenClaims(
        subject=str(payload["sub"]),
        role=str(payload["role"]),
        expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        token_id=str(payload["jti"]),
        minted_by=str(payload["azp"]) if payload.get("azp") is not None else None,
    )
