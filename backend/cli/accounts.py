"""``shopwise keys …`` and ``shopwise admins …``: the credentials of callers and operators."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from backend.cli.common import error, migrated_engine, settings
from backend.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from backend.services.auth import AuthService

keys_app = typer.Typer(help="Storefront API keys (stored hashed, shown once).")
admins_app = typer.Typer(help="Admin and editor accounts for the product team.")


def _auth_service() -> AuthService:
    from backend.services.auth import AuthService

    config = settings()
    return AuthService(db=migrated_engine(config), settings=config)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for, e.g. 'main storefront'")],
    scope: Annotated[
        list[str],
        typer.Option(help="recommendations:read, events:write, catalog:write, users:read, "
                     "metrics:read (repeat the option)"),
    ],
) -> None:  # fmt: skip
    """Create a key; the key itself is printed once and never stored."""
    try:
        created = _auth_service().create_key(name, scope)
    except InvalidInputError as exc:
        raise error(str(exc)) from exc
    typer.echo(f"id:     {created.id}\nscopes: {', '.join(created.scopes)}")
    typer.echo(f"key:    {created.api_key}\n(store it now: it cannot be shown again)")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id")]) -> None:
    """Revoke a key; requests with it fail at once."""
    try:
        _auth_service().revoke_key(uuid.UUID(key_id))
    except (ValueError, NotFoundError) as exc:
        raise error(f"no such key: {key_id}") from exc
    typer.echo(f"revoked {key_id}")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    for key in _auth_service().list_keys():
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        typer.echo(f"{key.id}  sw_{key.prefix}_…  {key.name}  [{', '.join(key.scopes)}]  {state}")


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
