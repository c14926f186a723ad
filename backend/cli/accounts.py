"""``shopwise keys …`` and ``shopwise admins …``: the credentials of callers and operators."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from backend.cli.common import error, migrated_engine, settings
from backend.errors import InvalidInputError, NotFoundError
from backend.security.api_keys import Scope
from backend.security.rate_limit import MAX_KEY_PER_MINUTE

if TYPE_CHECKING:
    from backend.services.auth import AuthService

keys_app = typer.Typer(help="Storefront API keys (stored hashed, shown once).")
admins_app = typer.Typer(help="Admin and editor accounts for the product team.")
tokens_app = typer.Typer(help="Issued bearer tokens (shopper sessions and staff logins).")
SCOPES_HELP = ", ".join(scope.value for scope in Scope) + " (repeat the option)"


def _auth_service() -> AuthService:
    from backend.services.auth import AuthService

    config = settings()
    return AuthService(db=migrated_engine(config), settings=config)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for, e.g. 'main storefront'")],
    scope: Annotated[
        list[str],
        typer.Option(help=SCOPES_HELP),
    ],
    rate_limit: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_KEY_PER_MINUTE,
                     help="Requests per minute for this key (omit: the service default)"),
    ] = None,
) -> None:  # fmt: skip
    """Create a key; the key itself is printed once and never stored."""
    try:
        created = _auth_service().create_key(name, scope, rate_limit_per_minute=rate_limit)
    except InvalidInputError as exc:
        raise error(str(exc)) from exc
    typer.echo(f"id:     {created.id}\nscopes: {', '.join(created.scopes)}")
    typer.echo(f"limit:  {_limit(created.rate_limit_per_minute)}")
    typer.echo(f"key:    {created.api_key}\n(store it now: it cannot be shown again)")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id")]) -> None:
    """Revoke a key; requests with it fail at once."""
    try:
        _auth_service().revoke_key(uuid.UUID(key_id))
    except (ValueError, NotFoundError) as exc:
        raise error(f"no such key: {key_id}") from exc
    typer.echo(f"revoked {key_id}")


@keys_app.command("set-limit")
def keys_set_limit(
    key_id: Annotated[str, typer.Argument(help="The key's id")],
    per_minute: Annotated[
        str, typer.Argument(metavar="N|default", help="Requests per minute, or 'default'")
    ],
) -> None:
    """Give a key its own requests per minute, or 'default' for the service-wide limit."""
    try:
        limit = None if per_minute == "default" else int(per_minute)
    except ValueError as exc:
        raise error(f"not a number of requests per minute nor 'default': {per_minute}") from exc
    try:
        key_uuid = uuid.UUID(key_id)
    except ValueError as exc:
        raise error(f"no such key: {key_id}") from exc
    try:
        _auth_service().set_key_rate_limit(key_uuid, limit)
    except InvalidInputError as exc:
        raise error(str(exc)) from exc
    except NotFoundError as exc:
        raise error(f"no such key: {key_id}") from exc
    typer.echo(f"{key_id}  limit {_limit(limit)}")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    for key in _auth_service().list_keys():
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        typer.echo(
            f"{key.id}  sw_{key.prefix}_…  {key.name}  [{', '.join(key.scopes)}]  "
            f"{_limit(key.rate_limit_per_minute)}  {state}"
        )


def _limit(per_minute: int | None) -> str:
    if per_minute is None:
        return f"{settings().rate_limit_per_key_per_minute}/min (default)"
    return f"{per_minute}/min"


@admins_app.command("create")
def admins_create(
    username: Annotated[str, typer.Option(help="Login name")],
    role: Annotated[str, typer.Option(help="admin or editor")] = "admin",
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                     envvar="SHOPWISE_ADMIN_PASSWORD", help="At least 12 characters"),
    ] = "",
) -> None:  # fmt: skip
    """Create an admin or editor account (password hashed with argon2id)."""
    try:
        user = _auth_service().create_admin(username, password, role)
    except InvalidInputError as exc:
        raise error(str(exc)) from exc
    typer.echo(f"created {user.role} {user.username}")


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option(help="Only this shopper's tokens")] = None,
    key: Annotated[str | None, typer.Option(help="Only the tokens this API key minted")] = None,
) -> None:
    """List live tokens (neither expired nor revoked), newest first; never the tokens themselves."""
    try:
        user_id = uuid.UUID(user) if user else None
        key_id = uuid.UUID(key) if key else None
    except ValueError as exc:
        raise error(f"not an id: {exc}") from exc
    for row in _auth_service().list_tokens(user_id=user_id, api_key_id=key_id):
        minted = f" minted by key {row.api_key_id}" if row.api_key_id else ""
        typer.echo(
            f"{row.id}  {row.role}  {row.subject}  expires {row.expires_at:%Y-%m-%d %H:%M}{minted}"
        )


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="The token's id (jti)")]) -> None:
    """Revoke one token; requests with it fail at once."""
    from backend.services.auth import Principal

    operator = Principal(kind="admin", name="shopwise tokens revoke")
    try:
        _auth_service().revoke_token(token_id, by=operator)
    except NotFoundError as exc:
        raise error(f"no such token: {token_id}") from exc
    typer.echo(f"revoked {token_id}")
