"""Who is calling: API keys, admin logins and shopper sessions."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.config import Settings
from backend.db.engine import session_scope
from backend.db.models import AdminUser, ApiKey, User, utcnow
from backend.errors import InvalidInputError, NotFoundError
from backend.security import api_keys, tokens
from backend.security.api_keys import Scope
from backend.security.passwords import hash_password, verify_password

log = logging.getLogger(__name__)

ROLES = ("admin", "editor")
GUEST_PREFIX = "guest:"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, after authentication."""

    kind: str  # "open" (auth off), "api_key", "admin", "editor", "shopper"
    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    user_id: uuid.UUID | None = None  # the shopper's own user (None for a guest)
    key_id: uuid.UUID | None = None


OPEN = Principal(kind="open", name="open (auth disabled)")


class AuthError(Exception):
    """Credentials missing or wrong (HTTP 401)."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    role: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class CreatedKey:
    id: uuid.UUID
    name: str
    scopes: list[str]
    api_key: str  # shown once


class AuthService:
    def __init__(self, *, db: Engine, settings: Settings) -> None:
        self.db = db
        self.enabled = settings.auth_enabled
        secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        # With auth off nothing verifies tokens across processes, so a per-process secret is fine.
        self._secret = secret or secrets.token_urlsafe(48)
        self._pepper = self._secret.encode()
        self._access_ttl = timedelta(minutes=settings.access_token_minutes)
        self._shopper_ttl = timedelta(minutes=settings.shopper_token_minutes)

    # --- API keys ------------------------------------------------------------------------

    def create_key(self, name: str, scopes: Iterable[str]) -> CreatedKey:
        wanted = sorted(set(scopes))
        unknown = [s for s in wanted if s not in {x.value for x in Scope}]
        if unknown or not wanted:
            allowed = ", ".join(x.value for x in Scope)
            raise InvalidInputError(f"scopes must be a non-empty subset of: {allowed}")
        new = api_keys.generate_key(self._pepper)
        row = ApiKey(name=name, prefix=new.prefix, secret_hash=new.secret_hash, scopes=wanted)
        with session_scope(self.db) as session:
            session.add(row)
        return CreatedKey(id=row.id, name=name, scopes=wanted, api_key=new.plaintext)

    def revoke_key(self, key_id: uuid.UUID) -> None:
        with session_scope(self.db) as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                raise NotFoundError("api key", key_id)
            if row.revoked_at is None:
                row.revoked_at = utcnow()

    def list_keys(self) -> list[ApiKey]:
        with Session(self.db) as session:
            return list(session.exec(select(ApiKey).order_by(col(ApiKey.created_at))).all())

    def authenticate_key(self, presented: str) -> Principal:
        parts = api_keys.split_key(presented)
        if parts is None:
            raise AuthError("malformed API key")
        prefix, secret = parts
        with Session(self.db) as session:
            row = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
        # Checked on every request (no cache), so a revoked key stops working at once.
        if row is None or row.revoked_at is not None:
            raise AuthError("unknown or revoked API key")
        if not api_keys.matches(secret, row.secret_hash, self._pepper):
            raise AuthError("unknown or revoked API key")
        return Principal(kind="api_key", name=row.name, scopes=frozenset(row.scopes), key_id=row.id)

    # --- admins and editors --------------------------------------------------------------

    def create_admin(self, username: str, password: str, role: str) -> AdminUser:
        if role not in ROLES:
            raise InvalidInputError(f"role must be one of: {', '.join(ROLES)}")
        try:
            password_hash = hash_password(password)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc
        with session_scope(self.db) as session:
            if session.exec(select(AdminUser).where(AdminUser.username == username)).first():
                raise InvalidInputError(f"admin user {username!r} already exists")
            row = AdminUser(username=username, password_hash=password_hash, role=role)
            session.add(row)
        return row

    def login(self, username: str, password: str) -> IssuedToken:
        with Session(self.db) as session:
            row = session.exec(select(AdminUser).where(AdminUser.username == username)).first()
        if not verify_password(password, row.password_hash if row else None) or row is None:
            raise AuthError("wrong username or password")
        if row.disabled:
            raise AuthError("this account is disabled")
        return self._issue(row.username, row.role, self._access_ttl)

    # --- shoppers ------------------------------------------------------------------------

    def shopper_session(self, user_id: uuid.UUID | None) -> IssuedToken:
        """A token bound to one shopper (or a fresh guest id), for the chat UI."""
        if user_id is not None:
            with Session(self.db) as session:
                if session.get(User, user_id) is None:
                    raise NotFoundError("user", user_id)
            subject = str(user_id)
        else:
            subject = f"{GUEST_PREFIX}{uuid.uuid4()}"
        return self._issue(subject, "shopper", self._shopper_ttl)

    def authenticate_token(self, token: str) -> Principal:
        try:
            claims = tokens.verify(token, secret=self._secret)
        except tokens.TokenError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        if claims.role == "shopper":
            user_id = None
            if not claims.subject.startswith(GUEST_PREFIX):
                user_id = uuid.UUID(claims.subject)
            return Principal(kind="shopper", name=claims.subject, user_id=user_id)
        if claims.role in ROLES:
            return Principal(kind=claims.role, name=claims.subject)
        raise AuthError("invalid token: unknown role")

    def _issue(self, subject: str, role: str, ttl: timedelta) -> IssuedToken:
        token, _ = tokens.issue(subject, role, secret=self._secret, ttl=ttl)
        return IssuedToken(access_token=token, role=role, expires_in=int(ttl.total_seconds()))
