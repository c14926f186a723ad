from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from backend.api.deps import ComponentsDep
from backend.api.schemas import Page
from backend.security.api_keys import Scope
from backend.security.text import SafeText
from backend.services.auth import AuthError, IssuedToken

router = APIRouter(tags=["auth"])


class LoginIn(BaseModel):
    username: SafeText = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: str
    expires_in: int = Field(description="Seconds until the token expires")


class ShopperSessionIn(BaseModel):
    user_id: uuid.UUID | None = Field(default=None, description="Omit for a guest session")


class ApiKeyIn(BaseModel):
    name: SafeText = Field(min_length=1, max_length=120)
    scopes: list[Scope] = Field(min_length=1, max_length=10)


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(BaseModel):
    id: uuid.UUID
    name: str
    scopes: list[str]
    api_key: str = Field(description="Shown once; store it now, it cannot be read again")


def _token(issued: IssuedToken) -> TokenOut:
    return TokenOut(
        access_token=issued.access_token, role=issued.role, expires_in=issued.expires_in
    )


@router.post(
    "/auth/login",
    response_model=TokenOut,
    summary="Admin or editor login: a short-lived bearer token",
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Too many tries"}},
)
async def login(body: LoginIn, components: ComponentsDep) -> TokenOut:
    try:
        issued = await run_in_threadpool(components.auth.login, body.username, body.password)
    except AuthError as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from exc
    return TokenOut(
        access_token=issued.access_token, role=issued.role, expires_in=issued.expires_in
    )


@router.post(
    "/auth/shopper-session",
    response_model=TokenOut,
    summary="A token bound to one shopper (or a new guest), for chat UIs",
    responses={404: {"description": "No such user"}},
)
def shopper_session(body: ShopperSessionIn, components: ComponentsDep) -> TokenOut:
    issued = components.auth.shopper_session(body.user_id)
    return TokenOut(
        access_token=issued.access_token, role=issued.role, expires_in=issued.expires_in
    )


@router.get("/admin/api-keys", response_model=Page[ApiKeyOut], summary="Storefront API keys")
def list_keys(components: ComponentsDep) -> Page[ApiKeyOut]:
    keys = [
        ApiKeyOut(
            id=k.id,
            name=k.name,
            prefix=k.prefix,
            scopes=k.scopes,
            created_at=k.created_at,
            revoked_at=k.revoked_at,
        )
        for k in components.auth.list_keys()
    ]
    return Page[ApiKeyOut](items=keys, total=len(keys), limit=max(len(keys), 1), offset=0)


@router.post(
    "/admin/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a scoped API key (shown once)",
)
def create_key(body: ApiKeyIn, components: ComponentsDep) -> ApiKeyCreated:
    created = components.auth.create_key(body.name, body.scopes)
    return ApiKeyCreated(
        id=created.id, name=created.name, scopes=created.scopes, api_key=created.api_key
    )


@router.delete(
    "/admin/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a key; it stops working at once",
    responses={404: {"description": "No such key"}},
)
def revoke_key(components: ComponentsDep, key_id: Annotated[uuid.UUID, Path()]) -> None:
    components.auth.revoke_key(key_id)
