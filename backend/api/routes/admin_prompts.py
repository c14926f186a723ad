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
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from backend.api.deps import ComponentsDep
from backend.llm.check import VocabularyCache
from backend.security.text import SafeMultilineText, SafeText
from backend.services.auth import AuthError
from backend.services.prompt_admin import (
    PreviewResult,
    PromptAdmin,
    PromptDetail,
    PromptSummary,
    PromptVersionOut,
)

router = APIRouter(prefix="/admin/prompts", tags=["prompt admin"])

NamePath = Annotated[str, Path(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.-]+$")]


def admin_author(request: Request, components: ComponentsDep) -> str:
    """The caller's name for the version history; refuses callers who may not edit."""
    if components.auth.enabled:
        principal = getattr(request.state, "principal", None)
        return str(getattr(principal, "name", "unknown"))
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    logged_in = _login_name(components, given)
    if logged_in is not None:
        return logged_in
    token = components.settings.admin_token
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


def _login_name(components: ComponentsDep, given: str) -> str | None:
    """With auth off, a token from ``/auth/login`` (an admin account's password) still counts."""
    if not given or given.startswith("sw_"):
        return None
    try:
        principal = components.auth.authenticate_token(given)
    except AuthError:
        return None
    return principal.name if principal.kind in ("admin", "editor") else None


AuthorDep = Annotated[str, Depends(admin_author)]


def prompt_admin(components: ComponentsDep, _: AuthorDep) -> PromptAdmin:
    store = components.prompt_store
    if store is None:
        raise HTTPException(status_code=503, detail="prompt versions are not available")
    return PromptAdmin(
        db=components.db,
        prompts=components.prompts,
        store=store,
        recommender=components.recommender,
        llm=components.llm,
        vocabulary=components.vocabulary or VocabularyCache(components.snapshots.get),
        max_tokens=components.settings.llm_max_tokens,
        top_n=components.settings.default_top_n,
    )


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


def _who(author: str, given: str | None) -> str:
    return given.strip() if author == "admin-token" and given and given.strip() else author


@router.get("", response_model=list[PromptSummary], summary="Every template and its version")
def list_prompts(admin: AdminDep) -> list[PromptSummary]:
    return admin.list_prompts()


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
) -> PromptDetail:
    return admin.update(name, body.source, author=_who(author, body.author), note=body.note)


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
) -> PromptDetail:
    return admin.rollback(name, body.version, author=_who(author, body.author), note=body.note)


@router.post(
    "/{name}/preview",
    response_model=PreviewResult,
    summary="Render a draft for sample users; with an LLM, generate, check, report pass rate",
)
async def preview_prompt(admin: AdminDep, name: NamePath, body: PromptPreview) -> PreviewResult:
    return await run_in_threadpool(
        admin.preview, name, body.source, body.user_ids, body.sample_size
    )
