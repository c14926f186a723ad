"""Who may call what: one declared decision for every route, secure by default.

A route missing from the table needs the admin role at run time, so a new endpoint is never
open by accident; the authorization matrix test (tests/security/test_authorization_matrix.py)
fails until the route has its own line here.

How a decision reads (``backend/api/security.py`` applies it):
- ``public``: anyone, no credential needed.
- ``scopes``: an API key holding any of them may call it, for any user (a storefront acts
  for all of its shoppers).
- ``roles``: staff tokens from ``POST /auth/login`` (admins may call everything).
- ``shopper``: a shopper token may call it for its own user id only (path or JSON body), and
  only if the key that minted it could (the token's scopes are its key's, see
  ``SHOPPER_SCOPES``); ``guest``: a guest token too, when it names no user at all.
- ``own_token``: any bearer token may call it about itself (log out); no scope needed.

Personal data (profile, email, cart, history, export) needs ``users:read``; erasure
``users:erase``. A ``recommendations:read`` key sees recommendations and chat results for a
user id (with their evidence, which may name a few of the products behind them), never the
profile or the history itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.security.api_keys import Scope


@dataclass(frozen=True, slots=True)
class Policy:
    public: bool = False
    scopes: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = frozenset({"admin"})
    shopper: bool = False  # a shopper may call it for their own user id
    guest: bool = False  # ... and a guest shopper too (no user id)
    own_token: bool = False  # any bearer token, about itself


def _p(*scopes: Scope, roles: tuple[str, ...] = ("admin",), shopper: bool = False,
       guest: bool = False, own_token: bool = False) -> Policy:  # fmt: skip
    return Policy(
        scopes=frozenset(s.value for s in scopes), roles=frozenset(roles), shopper=shopper,
        guest=guest, own_token=own_token,
    )  # fmt: skip


PUBLIC = Policy(public=True)
ADMIN_ONLY = _p()
PROMPT_EDITING = _p(roles=("admin", "editor"))

POLICIES: dict[tuple[str, str], Policy] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("GET", "/metrics"): _p(Scope.READ_METRICS),
    ("GET", "/explanations/stats"): _p(Scope.READ_METRICS),
    ("GET", "/chat/stats"): _p(Scope.READ_METRICS),
    ("POST", "/auth/login"): PUBLIC,
    ("POST", "/auth/logout"): _p(
        roles=("admin", "editor"), shopper=True, guest=True, own_token=True
    ),
    # Minting acts for a shopper: a dedicated scope, never implied by reading or writing.
    ("POST", "/auth/shopper-session"): _p(Scope.ACT_FOR_SHOPPERS),
    ("DELETE", "/auth/shopper-session/{token_id}"): _p(Scope.ACT_FOR_SHOPPERS),
    ("GET", "/admin/tokens"): ADMIN_ONLY,
    ("DELETE", "/admin/tokens/{token_id}"): ADMIN_ONLY,
    ("GET", "/admin/api-keys"): ADMIN_ONLY,
    ("POST", "/admin/api-keys"): ADMIN_ONLY,
    ("DELETE", "/admin/api-keys/{key_id}"): ADMIN_ONLY,
    ("PATCH", "/admin/api-keys/{key_id}"): ADMIN_ONLY,
    ("GET", "/products"): PUBLIC,
    ("GET", "/products/{product_id}"): PUBLIC,
    ("GET", "/products/{product_id}/similar"): PUBLIC,
    ("GET", "/categories"): PUBLIC,
    ("GET", "/search"): PUBLIC,
    ("GET", "/images/products/{product_id}.svg"): PUBLIC,
    ("POST", "/products"): _p(Scope.MANAGE_CATALOG),
    ("PUT", "/products/{product_id}"): _p(Scope.MANAGE_CATALOG),
    ("DELETE", "/products/{product_id}"): _p(Scope.MANAGE_CATALOG),
    ("GET", "/users"): _p(Scope.READ_USERS),
    ("GET", "/users/{user_id}"): _p(Scope.READ_USERS, shopper=True),
    ("GET", "/users/{user_id}/export"): _p(Scope.READ_USERS, shopper=True),
    ("DELETE", "/users/{user_id}"): _p(Scope.ERASE_USERS, shopper=True),
    # The storefront that sends a shopper's events knows where they are (or the shopper does).
    ("PUT", "/users/{user_id}/location"): _p(Scope.WRITE_EVENTS, shopper=True),
    ("GET", "/recommend/{user_id}"): _p(Scope.READ_RECOMMENDATIONS, shopper=True),
    ("GET", "/recommend/{user_id}/explanation/stream"): _p(
        Scope.READ_RECOMMENDATIONS, shopper=True
    ),
    ("POST", "/events"): _p(Scope.WRITE_EVENTS, shopper=True),
    ("POST", "/events/batch"): _p(Scope.WRITE_EVENTS, shopper=True),
    ("POST", "/chat"): _p(Scope.READ_RECOMMENDATIONS, shopper=True, guest=True),
    # Whoever may chat may fetch a late reply: the ticket answers its turn's owner alone.
    ("GET", "/chat/replies/{ticket}"): _p(Scope.READ_RECOMMENDATIONS, shopper=True, guest=True),
    ("GET", "/admin/prompts"): PROMPT_EDITING,
    ("GET", "/admin/prompts/permissions"): PROMPT_EDITING,
    ("GET", "/admin/prompts/shoppers"): PROMPT_EDITING,
    ("POST", "/admin/prompts/{name}/check"): PROMPT_EDITING,
    ("GET", "/admin/prompts/{name}"): PROMPT_EDITING,
    ("PUT", "/admin/prompts/{name}"): PROMPT_EDITING,
    ("GET", "/admin/prompts/{name}/versions"): PROMPT_EDITING,
    ("POST", "/admin/prompts/{name}/rollback"): PROMPT_EDITING,
    ("POST", "/admin/prompts/{name}/preview"): PROMPT_EDITING,
    ("GET", "/admin/overview"): _p(roles=("admin", "editor")),
    ("GET", "/admin/evaluation"): ADMIN_ONLY,
    # A/B experiments and online metrics: editors may read, admins decide.
    ("POST", "/experiments"): ADMIN_ONLY,
    ("GET", "/experiments"): PROMPT_EDITING,
    ("GET", "/experiments/{experiment_id}"): PROMPT_EDITING,
    ("GET", "/experiments/{experiment_id}/report"): PROMPT_EDITING,
    ("POST", "/experiments/{experiment_id}/stop"): ADMIN_ONLY,
    ("POST", "/experiments/{experiment_id}/promote"): ADMIN_ONLY,
    ("GET", "/analytics/summary"): _p(Scope.READ_METRICS, roles=("admin", "editor")),
    ("GET", "/analytics/segments"): _p(Scope.READ_METRICS, roles=("admin", "editor")),
}


def policy_for(method: str, route: str) -> Policy:
    if method == "HEAD":
        method = "GET"
    return POLICIES.get((method, route), ADMIN_ONLY)
