"""Who is calling: API keys, admin logins and shopper sessions."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from backend.config import Settings
from backend.db.engine import session_scope
from backend.db.models import AdminUser, ApiKey, AuthToken, User, as_utc, utcnow
from backend.errors import InvalidInputError, NotFoundError
from backend.security import api_keys, tokens
from backend.security.api_keys import SHOPPER_SCOPES, Scope
from backend.security.passwords import hash_password, verify_password
from backend.security.rate_limit import MAX_KEY_PER_MINUTE

log = logging.getLogger(__name__)

ROLES = ("admin", "editor")
GUEST_PREFIX = "guest:"
_KEEP_EXPIRED = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, after authentication."""

    kind: str  # "open" (auth off), "anonymous", "api_key", "admin", "editor", "shopper"
    name: str
    # A key's scopes; for a shopper token, the most it may do (its minting key's scopes).
    scopes: frozenset[str] = field(default_factory=frozenset)
    user_id: uuid.UUID | None = None  # the shopper's own user (None for a guest)
    key_id: uuid.UUID | None = None  # the API key presented
    token_id: str | None = None  # the bearer token presented (its jti)
    minted_by: uuid.UUID | None = None  # the API key that minted this shopper token
    rate_limit: int | None = None  # an API key's own requests per minute (None: the default)

    @property
    def identity(self) -> str:
        """Who owns what this caller creates (chat sessions, event ids). The same for every
        token of one shopper, distinct for each guest, each key and each staff member."""
        if self.kind == "api_key":
            return f"key:{self.key_id}"
        if self.kind == "shopper":
            return f"shopper:{self.user_id}" if self.user_id is not None else self.name
        if self.kind in ROLES:
            return f"staff:{self.name}"
        return self.kind


OPEN = Principal(kind="open", name="open (auth disabled)")


class AuthError(Exception):
    """Credentials missing or wrong (HTTP 401)."""


class NotAllowedError(Exception):
    """Authenticated, but this credential may not do that (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    role: str
    expires_in: int
    token_id: str = ""
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CreatedKey:
    id: uuid.UUID
    name: str
    scopes: list[str]
    api_key: str  # shown once
    rate_limit_per_minute: int | None = None


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

    def create_key(
        self, name: str, scopes: Iterable[str], *, rate_limit_per_minute: int | None = None
    ) -> CreatedKey:
        wanted = sorted(set(scopes))
        unknown = [s for s in wanted if s not in {x.value for x in Scope}]
        if unknown or not wanted:
            allowed = ", ".join(x.value for x in Scope)
            raise InvalidInputError(f"scopes must be a non-empty subset of: {allowed}")
        _check_rate_limit(rate_limit_per_minute)
        new = api_keys.generate_key(self._pepper)
        row = ApiKey(
            name=name,
            prefix=new.prefix,
            secret_hash=new.secret_hash,
            scopes=wanted,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        with session_scope(self.db) as session:
            session.add(row)
        return CreatedKey(
            id=row.id,
            name=name,
            scopes=wanted,
            api_key=new.plaintext,
            rate_limit_per_minute=rate_limit_per_minute,
        )

    def set_key_rate_limit(self, key_id: uuid.UUID, per_minute: int | None) -> ApiKey:
        """Give a key its own requests per minute (None: back to the default). Keys are
        authenticated on every request, so the next request already counts against it."""
        _check_rate_limit(per_minute)
        with session_scope(self.db) as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                raise NotFoundError("api key", key_id)
            row.rate_limit_per_minute = per_minute
        return row

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
        return Principal(
            kind="api_key",
            name=row.name,
            scopes=frozenset(row.scopes),
            key_id=row.id,
            rate_limit=row.rate_limit_per_minute,
        )

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

    def shopper_session(self, user_id: uuid.UUID | None, *, minter: Principal) -> IssuedToken:
        """A token bound to one shopper (or a fresh guest id), for a storefront or chat UI.

        Only a key with ``shoppers:act`` (or an admin) mints; the token may do, for its own
        user only, what the key's shopper scopes allow, and dies with the key."""
        if minter.kind == "api_key":
            if Scope.ACT_FOR_SHOPPERS not in minter.scopes:
                raise NotAllowedError("minting shopper tokens needs the shoppers:act scope")
            scopes = minter.scopes & SHOPPER_SCOPES
        elif minter.kind in ("admin", "open"):
            scopes = frozenset(SHOPPER_SCOPES)
        else:
            raise NotAllowedError("only a storefront key with shoppers:act or an admin mints")
        if user_id is not None:
            with Session(self.db) as session:
                if session.get(User, user_id) is None:
                    raise NotFoundError("user", user_id)
            subject = str(user_id)
        else:
            subject = f"{GUEST_PREFIX}{uuid.uuid4()}"
        return self._issue(
            subject,
            "shopper",
            self._shopper_ttl,
            user_id=user_id,
            key_id=minter.key_id,
            scopes=scopes,
        )

    def authenticate_token(self, token: str) -> Principal:
        try:
            claims = tokens.verify(token, secret=self._secret)
        except tokens.TokenError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        with Session(self.db) as session:
            row = session.get(AuthToken, claims.token_id)
            key = session.get(ApiKey, row.api_key_id) if row and row.api_key_id else None
            staff = None
            if row is not None and row.role in ROLES:
                staff = session.exec(
                    select(AdminUser).where(AdminUser.username == row.subject)
                ).first()
        # Checked on every request (no cache), so revoking takes effect at once.
        if row is None or (row.subject, row.role) != (claims.subject, claims.role):
            raise AuthError("invalid token: unknown or no longer valid")
        if row.revoked_at is not None:
            raise AuthError("invalid token: revoked")
        minted_by = str(row.api_key_id) if row.api_key_id is not None else None
        if minted_by != claims.minted_by:
            raise AuthError("invalid token: unknown or no longer valid")
        if row.api_key_id is not None:
            if key is None or key.revoked_at is not None:
                raise AuthError("invalid token: revoked with the API key that minted it")
        if claims.role == "shopper":
            user_id = None
            if not claims.subject.startswith(GUEST_PREFIX):
                user_id = uuid.UUID(claims.subject)
            return Principal(
                kind="shopper",
                name=claims.subject,
                scopes=frozenset(row.scopes),
                user_id=user_id,
                token_id=row.id,
                minted_by=row.api_key_id,
            )
        if claims.role in ROLES:
            if staff is None or staff.disabled or staff.role != claims.role:
                raise AuthError("invalid token: this account is disabled or was changed")
            return Principal(kind=claims.role, name=claims.subject, token_id=row.id)
        raise AuthError("invalid token: unknown role")

    # --- revocation ----------------------------------------------------------------------

    def revoke_token(self, token_id: str, *, by: Principal) -> None:
        """Revoke one token: an admin any, a key only the tokens it minted, anyone their own."""
        with session_scope(self.db) as session:
            row = session.get(AuthToken, token_id)
            mine = row is not None and (
                by.kind in ("admin", "open")
                or by.token_id == token_id
                or (by.kind == "api_key" and row.api_key_id == by.key_id)
            )
            if row is None or not mine:  # another key's token is not found, as if absent
                raise NotFoundError("token", token_id)
            if row.revoked_at is None:
                row.revoked_at = utcnow()

    def list_tokens(
        self, *, user_id: uuid.UUID | None = None, api_key_id: uuid.UUID | None = None
    ) -> list[AuthToken]:
        """Tokens not yet expired nor revoked, newest first."""
        query = select(AuthToken).where(
            col(AuthToken.revoked_at).is_(None), col(AuthToken.expires_at) > utcnow()
        )
        if user_id is not None:
            query = query.where(AuthToken.user_id == user_id)
        if api_key_id is not None:
            query = query.where(AuthToken.api_key_id == api_key_id)
        with Session(self.db) as session:
            return list(session.exec(query.order_by(col(AuthToken.created_at).desc())).all())

    def _issue(
        self,
        subject: str,
        role: str,
        ttl: timedelta,
        *,
        user_id: uuid.UUID | None = None,
        key_id: uuid.UUID | None = None,
        scopes: Iterable[str] = (),
    ) -> IssuedToken:
        issued = tokens.issue(
            subject,
            role,
            secret=self._secret,
            ttl=ttl,
            minted_by=str(key_id) if key_id is not None else None,
        )
        granted = sorted(scopes)
        with session_scope(self.db) as session:
            # Rows of long-expired tokens say nothing any more: drop them as new ones come.
            session.execute(
                delete(AuthToken).where(col(AuthToken.expires_at) < utcnow() - _KEEP_EXPIRED)
            )
            session.add(
                AuthToken(
                    id=issued.token_id,
                    subject=subject,
                    role=role,
                    user_id=user_id,
                    api_key_id=key_id,
                    scopes=granted,
                    expires_at=as_utc(issued.expires_at),
                )
            )
        return IssuedToken(
            access_token=issued.token,
            role=role,
            expires_in=int(ttl.total_seconds()),
            token_id=issued.token_id,
            scopes=tuple(granted),
        )


def _check_rate_limit(per_minute: int | None) -> None:
    if per_minute is not None and not 1 <= per_minute <= MAX_KEY_PER_MINUTE:
        raise InvalidInputError(
            f"a key's rate limit is 1 to {MAX_KEY_PER_MINUTE:,} requests per minute"
        )
