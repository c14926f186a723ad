from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, BeforeValidator, Field
from starlette.concurrency import run_in_threadpool

from backend.api.deps import AuthDep
from backend.api.schemas import Page
from backend.api.security import PrincipalDep
from backend.security.api_keys import Scope
from backend.security.rate_limit import MAX_KEY_PER_MINUTE
from backend.security.text import SafeText

router = APIRouter(tags=["auth"])


class LoginIn(BaseModel):
    username: SafeText = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: str
    expires_in: int = Field(description="Seconds until the token expires")
    token_id: str = Field(description="The token's id, to revoke it (jti)")
    scopes: list[str] = Field(
        default_factory=list,
        description="A shopper token: the most it may do, for its own user only",
    )


class ShopperSessionIn(BaseModel):
    user_id: uuid.UUID | None = Field(default=None, description="Omit for a guest session")


class TokenInfo(BaseModel):
    id: str
    role: str
    subject: str
    user_id: uuid.UUID | None
    api_key_id: uuid.UUID | None = Field(description="The key that minted a shopper token")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime


TokenIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


def _json_integer(value: object) -> object:
    """A JSON integer, as the schema says: 1398.0 is one, true and "10" are not (lax
    validation would take both)."""
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


Quota = Annotated[int, Field(ge=1, le=MAX_KEY_PER_MINUTE), BeforeValidator(_json_integer)]
RateLimitField = Annotated[
    Quota | None,
    Field(
        description="Requests per minute for this key; null: the service default "
        "(RATE_LIMIT_PER_KEY_PER_MINUTE)",
    ),
]


class ApiKeyIn(BaseModel):
    name: SafeText = Field(min_length=1, max_length=120)
    scopes: list[Scope] = Field(min_length=1, max_length=10)
    rate_limit_per_minute: RateLimitField = None


class ApiKeyPatch(BaseModel):
    rate_limit_per_minute: RateLimitField = Field(
        description="The key's own requests per minute; null: back to the service default"
    )


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    rate_limit_per_minute: RateLimitField


class ApiKeyCreated(BaseModel):
    id: uuid.UUID
    name: str
    scopes: list[str]
    rate_limit_per_minute: RateLimitField
    api_key: str = Field(description="Shown once; store it now, it cannot be read again")


@router.post(
    "/auth/login",
    response_model=TokenOut,
    summary="Admin or editor login: a short-lived bearer token",
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Too many tries"}},
)
async def login(body: LoginIn, auth: AuthDep) -> TokenOut:
    issued = await run_in_threadpool(auth.login, body.username, body.password)
    return TokenOut.model_validate(issued, from_attributes=True)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End the bearer token sent with this request (any role, shoppers and guests too)",
    responses={422: {"description": "No bearer token was sent"}},
)
def logout(request: Request, principal: PrincipalDep, auth: AuthDep) -> None:
    token_id = principal.token_id
    if token_id is None:  # auth off: nobody checked the token on the way in
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and not header[7:].strip().startswith("sw_"):
            token_id = auth.authenticate_token(header[7:].strip()).token_id
    if token_id is None:
        raise HTTPException(
            status_code=422, detail="send the token to end as 'Authorization: Bearer <token>'"
        )
    auth.revoke_token(token_id, by=principal)


@router.post(
    "/auth/shopper-session",
    response_model=TokenOut,
    summary="A token bound to one shopper (or a new guest): needs a shoppers:act key",
    responses={
        403: {"description": "The credential may not act for shoppers"},
        404: {"description": "No such user"},
    },
)
def shopper_session(body: ShopperSessionIn, principal: PrincipalDep, auth: AuthDep) -> TokenOut:
    issued = auth.shopper_session(body.user_id, minter=principal)
    return TokenOut.model_validate(issued, from_attributes=True)


@router.delete(
    "/auth/shopper-session/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a shopper token this key minted (the shopper logged out of the shop)",
    responses={404: {"description": "No such token minted by this key"}},
)
def revoke_shopper_session(token_id: TokenIdPath, principal: PrincipalDep, auth: AuthDep) -> None:
    auth.revoke_token(token_id, by=principal)


@router.get(
    "/admin/tokens",
    response_model=Page[TokenInfo],
    summary="Tokens in force (not expired, not revoked), newest first",
)
def list_tokens(
    auth: AuthDep,
    user_id: Annotated[uuid.UUID | None, Query()] = None,
    api_key_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[TokenInfo]:
    rows = auth.list_tokens(user_id=user_id, api_key_id=api_key_id)
    items = [TokenInfo.model_validate(row, from_attributes=True) for row in rows]
    return Page[TokenInfo](items=items, total=len(items), limit=max(len(items), 1), offset=0)


@router.delete(
    "/admin/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke any token; it stops working at once",
    responses={404: {"description": "No such token"}},
)
def revoke_token(token_id: TokenIdPath, principal: PrincipalDep, auth: AuthDep) -> None:
    auth.revoke_token(token_id, by=principal)


@router.get("/admin/api-keys", response_model=Page[ApiKeyOut], summary="Storefront API keys")
def list_keys(auth: AuthDep) -> Page[ApiKeyOut]:
    keys = [ApiKeyOut.model_validate(k, from_attributes=True) for k in auth.list_keys()]
    return Page[ApiKeyOut](items=keys, total=len(keys), limit=max(len(keys), 1), offset=0)


@router.post(
    "/admin/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a scoped API key (shown once)",
)
def create_key(body: ApiKeyIn, auth: AuthDep) -> ApiKeyCreated:
    created = auth.create_key(
        body.name, body.scopes, rate_limit_per_minute=body.rate_limit_per_minute
    )
    return ApiKeyCreated.model_validate(created, from_attributes=True)


@router.patch(
    "/admin/api-keys/{key_id}",
    response_model=ApiKeyOut,
    summary="Set a key's own rate limit, or null to fall back to the default",
    responses={404: {"description": "No such key"}},
)
def update_key(body: ApiKeyPatch, auth: AuthDep, key_id: Annotated[uuid.UUID, Path()]) -> ApiKeyOut:
    row = auth.set_key_rate_limit(key_id, body.rate_limit_per_minute)
    return ApiKeyOut.model_validate(row, from_attributes=True)


@router.delete(
    "/admin/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a key; it stops working at once",
    responses={404: {"description": "No such key"}},
)
def revoke_key(auth: AuthDep, key_id: Annotated[uuid.UUID, Path()]) -> None:
    auth.revoke_key(key_id)
