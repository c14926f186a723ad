"""Authentication and authorisation for every request, in one dependency.

``authorize`` runs before each route: it identifies the caller (API key in ``X-API-Key``, or
a bearer token), applies the route's policy from ``policies.py`` (the rate limits are counted
earlier, in ``middleware.RateLimitMiddleware``), and
leaves the ``Principal`` on ``request.state`` for routes that need it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from backend.api.deps import AuthDep
from backend.api.policies import Policy, policy_for
from backend.services.auth import OPEN, AuthError, AuthService, Principal


def client_ip(request: Request) -> str:
    """The client's address as the rate-limit middleware resolved it (trusted proxies)."""
    known = getattr(request.state, "client_ip", None)
    if isinstance(known, str):
        return known
    return request.client.host if request.client else "unknown"


def authenticate(
    auth: AuthService, api_key: str | None, authorization: str | None
) -> Principal | None:
    """The caller named by the headers, None if anonymous; AuthError if the credential fails."""
    header = authorization or ""
    if api_key:
        return auth.authenticate_key(api_key)
    if header.lower().startswith("bearer "):
        value = header[7:].strip()
        if value.startswith("sw_"):
            return auth.authenticate_key(value)
        return auth.authenticate_token(value)
    return None


def _identify(request: Request, auth: AuthService) -> Principal | None:
    # The rate-limit middleware authenticated the caller already (and counted a failure).
    identified = getattr(request.state, "identified", None)
    try:
        if identified is not None:
            principal, error = identified
            if error is not None:
                raise error
            return principal  # type: ignore[no-any-return]
        return authenticate(
            auth, request.headers.get("x-api-key"), request.headers.get("authorization")
        )
    except AuthError as exc:
        raise HTTPException(
            status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc


async def _user_ids_in_request(request: Request) -> set[str]:
    """User ids the request acts on: the path's, and any ``user_id`` in a JSON body."""
    ids = set()
    if "user_id" in request.path_params:
        ids.add(str(request.path_params["user_id"]))
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        try:
            body: Any = json.loads(await request.body() or b"null")
        except ValueError:
            return ids  # the route itself answers malformed JSON with a 422
        items = body.get("events", []) if isinstance(body, dict) else []
        for item in [body, *items] if isinstance(items, list) else [body]:
            if isinstance(item, dict) and item.get("user_id") is not None:
                ids.add(str(item["user_id"]))
    return ids


async def _allowed(principal: Principal, policy: Policy, request: Request) -> bool:
    if principal.kind in policy.roles or principal.kind == "admin":
        return True
    if principal.kind == "api_key":
        return bool(principal.scopes & policy.scopes)
    if principal.kind != "shopper" or not policy.shopper:
        return False
    # A shopper token never does more than the key that minted it could do itself.
    if not policy.own_token and not principal.scopes & policy.scopes:
        return False
    ids = await _user_ids_in_request(request)
    if principal.user_id is None:
        return policy.guest and not ids
    return ids <= {str(principal.user_id)}


async def authorize(request: Request, auth: AuthDep) -> Principal:
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    policy = policy_for(request.method, route)
    principal = _identify(request, auth) if auth.enabled else None
    if not auth.enabled:
        request.state.principal = OPEN
        return OPEN
    if policy.public:
        request.state.principal = principal
        return principal or Principal(kind="anonymous", name=client_ip(request))
    if principal is None:
        raise HTTPException(
            status_code=401,
            detail="authentication required: send X-API-Key or Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not await _allowed(principal, policy, request):
        raise HTTPException(status_code=403, detail="not allowed for this credential")
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(authorize)]
