"""Prompt management API for the product team (``/admin/prompts``).

Who may call it: with authentication on, the global ``authorize`` dependency lets only the
admin and editor roles through (``policies.py``) and the caller's name is the author. With
authentication off (the loopback demo), it needs ``Authorization: Bearer`` with either a token
from ``POST /auth/login`` (an admin or editor account; the dashboard's way) or ``ADMIN_TOKEN``;
with neither configured it is disabled.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from backend.api.deps import AuthDep, PromptAdminDep, SettingsDep
from backend.api.policies import policy_for
from backend.security.text import SafeMultilineText, SafeText
from backend.services.auth import AuthError, AuthService
from backend.services.prompt_admin import (
    PreviewResult,
    PromptAdmin,
    PromptCheck,
    PromptDetail,
    PromptInvalid,
    PromptSummary,
    PromptVersionOut,
    ShopperRef,
)

router = APIRouter(prefix="/admin/prompts", tags=["prompt admin"])

NamePath = Annotated[str, Path(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.-]+$")]


def admin_author(request: Request, auth: AuthDep, settings: SettingsDep) -> str:
    """The caller's name for the version history; refuses callers who may not edit."""
    if auth.enabled:
        principal = getattr(request.state, "principal", None)
        return str(getattr(principal, "name", "unknown"))
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    logged_in = _login_name(auth, given)
    if logged_in is not None:
        return logged_in
    token = settings.admin_token
    if token is None:
        raise HTTPException(
            status_code=403,
            detail="the prompt admin API is disabled: log in as an admin or editor, set "
            "ADMIN_TOKEN, or turn on authentication to enable it",
        )
    if not given or not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise HTTPException(
            status_code=401,
            detail="send the admin token as 'Authorization: Bearer <ADMIN_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return "admin-token"


def _login_name(auth: AuthService, given: str) -> str | None:
    """With auth off, a token from ``/auth/login`` (an admin account's password) still counts."""
    if not given or given.startswith("sw_"):
        return None
    try:
        principal = auth.authenticate_token(given)
    except AuthError:
        return None
    return principal.name if principal.kind in ("admin", "editor") else None


AuthorDep = Annotated[str, Depends(admin_author)]


def caller_role(request: Request, auth: AuthDep, _: AuthorDep) -> str:
    """The role the roles table judges this caller by ("admin" or "editor")."""
    principal = getattr(request.state, "principal", None)
    if auth.enabled:
        return str(getattr(principal, "kind", "editor"))
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if given and not given.startswith("sw_"):
        try:
            return auth.authenticate_token(given).kind
        except AuthError:
            pass
    return "admin"  # the ADMIN_TOKEN holder


RoleDep = Annotated[str, Depends(caller_role)]


def prompt_admin(admin: PromptAdminDep, _: AuthorDep) -> PromptAdmin:
    """The prompt admin service, for callers who may edit."""
    return admin


AdminDep = Annotated[PromptAdmin, Depends(prompt_admin)]


class PromptUpdate(BaseModel):
    source: SafeMultilineText = Field(
        min_length=1, max_length=20_000, description="The Jinja2 template"
    )
    author: SafeText | None = Field(
        default=None, max_length=200, description="Kept with the version"
    )
    note: SafeText | None = Field(default=None, max_length=500)


class PromptRollback(BaseModel):
    version: int | None = Field(
        default=None, ge=0, description="Version to restore; 0 = the file; default: the previous"
    )
    author: SafeText | None = Field(default=None, max_length=200)
    note: SafeText | None = Field(default=None, max_length=500)


class PromptPreview(BaseModel):
    source: SafeMultilineText | None = Field(
        default=None, min_length=1, max_length=20_000, description="A draft; default: in effect"
    )
    user_ids: list[uuid.UUID] | None = Field(default=None, max_length=10)
    sample_size: int = Field(default=3, ge=1, le=10)


class PromptDraft(BaseModel):
    source: str = Field(min_length=1, max_length=20_000, description="The Jinja2 template")


class Permission(BaseModel):
    allowed: bool
    why: str | None = None  # when not allowed: what the role cannot do, in words


class PromptPermissions(BaseModel):
    role: str
    edit: Permission
    rollback: Permission
    start_experiment: Permission


T = TypeVar("T")


def _refusal(call: Callable[[], T]) -> T | JSONResponse:
    """A refused version: the usual one-line ``detail`` plus ``problems`` with their lines."""
    try:
        return call()
    except PromptInvalid as exc:
        problems = [p.model_dump() for p in exc.problems]
        return JSONResponse(status_code=422, content={"detail": str(exc), "problems": problems})


def _permission(role: str, method: str, route: str, action: str) -> Permission:
    roles = policy_for(method, route).roles
    if role == "admin" or role in roles:
        return Permission(allowed=True)
    who = " and ".join(f"{r}s" for r in sorted(roles))
    return Permission(allowed=False, why=f"Only {who} may {action}; your role is {role}.")


def _who(author: str, given: str | None) -> str:
    return given.strip() if author == "admin-token" and given and given.strip() else author


@router.get("", response_model=list[PromptSummary], summary="Every template and its version")
def list_prompts(admin: AdminDep) -> list[PromptSummary]:
    return admin.list_prompts()


@router.get(
    "/permissions",
    response_model=PromptPermissions,
    summary="What the caller's role may do with prompts (from the roles table)",
)
def prompt_permissions(role: RoleDep) -> PromptPermissions:
    return PromptPermissions(
        role=role,
        edit=_permission(role, "PUT", "/admin/prompts/{name}", "save prompt versions"),
        rollback=_permission(role, "POST", "/admin/prompts/{name}/rollback", "roll a prompt back"),
        start_experiment=_permission(role, "POST", "/experiments", "start experiments"),
    )


@router.get(
    "/shoppers",
    response_model=list[ShopperRef],
    summary="Shoppers a preview can be run for (id and name only)",
)
def preview_shoppers(
    admin: AdminDep, limit: Annotated[int, Query(ge=1, le=200)] = 100
) -> list[ShopperRef]:
    return admin.shoppers(limit)


@router.get("/{name}", response_model=PromptDetail, summary="A template: text in effect, file")
def get_prompt(admin: AdminDep, name: NamePath) -> PromptDetail:
    return admin.get(name)


@router.put(
    "/{name}",
    response_model=PromptDetail,
    summary="Store a new version (validated; in effect at once, no restart)",
    responses={404: {"description": "No such template"}, 422: {"description": "Rejected"}},
)
def update_prompt(
    admin: AdminDep, author: AuthorDep, name: NamePath, body: PromptUpdate
) -> PromptDetail | JSONResponse:
    return _refusal(
        lambda: admin.update(name, body.source, author=_who(author, body.author), note=body.note)
    )


@router.post(
    "/{name}/check",
    response_model=PromptCheck,
    summary="Validate a draft as a save would, store nothing; every problem with its line",
    responses={404: {"description": "No such template"}},
)
def check_prompt(admin: AdminDep, name: NamePath, body: PromptDraft) -> PromptCheck:
    return admin.check(name, body.source)


@router.get(
    "/{name}/versions",
    response_model=list[PromptVersionOut],
    summary="Stored versions, newest first",
)
def prompt_versions(admin: AdminDep, name: NamePath) -> list[PromptVersionOut]:
    return admin.versions(name)


@router.post(
    "/{name}/rollback",
    response_model=PromptDetail,
    summary="Restore an earlier version (stored as a new one) or the file",
)
def rollback_prompt(
    admin: AdminDep, author: AuthorDep, name: NamePath, body: PromptRollback
) -> PromptDetail | JSONResponse:
    return _refusal(
        lambda: admin.rollback(name, body.version, author=_who(author, body.author), note=body.note)
    )


@router.post(
    "/{name}/preview",
    response_model=PreviewResult,
    summary="Render a draft for sample users; with an LLM, generate, check, report pass rate",
)
async def preview_prompt(
    admin: AdminDep, name: NamePath, body: PromptPreview
) -> PreviewResult | JSONResponse:
    return await run_in_threadpool(
        _refusal, lambda: admin.preview(name, body.source, body.user_ids, body.sample_size)
    )
