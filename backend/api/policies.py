"""Who may call what: one table for every route, secure by default.

A route missing from the table needs the admin role, so a new endpoint is never open by
accident. ``shopper`` routes accept a shopper token only for the shopper's own user id (in
the path or the JSON body).
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


def _p(*scopes: Scope, roles: tuple[str, ...] = ("admin",), shopper: bool = False,
       guest: bool = False) -> Policy:  # fmt: skip
    return Policy(
        scopes=frozenset(s.value for s in scopes), roles=frozenset(roles), shopper=shopper,
        guest=guest,
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
    ("POST", "/auth/shopper-session"): _p(Scope.READ_RECOMMENDATIONS, Scope.WRITE_EVENTS),
    ("GET", "/products"): PUBLIC,
    ("GET", "/products/{product_id}"): PUBLIC,
    ("GET", "/products/{product_id}/similar"): PUBLIC,
    ("GET", "/categories"): PUBLIC,
    ("GET", "/search"): PUBLIC,
    ("GET", "/images/products/{product_id}.svg"): PUBLIC,
    ("POST", "/products"): _p(Scope.MANAGE_CATALOG),
    ("PUT", "/products/{product_id}"): _p(Scope.MANAGE_CATALOG),
    ("PATCH", "/products/{product_id}"): _p(Scope.MANAGE_CATALOG),
    ("DELETE", "/products/{product_id}"): _p(Scope.MANAGE_CATALOG),
    ("GET", "/users"): _p(Scope.READ_USERS),
    ("GET", "/users/{user_id}"): _p(Scope.READ_USERS, Scope.READ_RECOMMENDATIONS, shopper=True),
    ("GET", "/users/{user_id}/export"): _p(shopper=True),
    ("DELETE", "/users/{user_id}"): _p(shopper=True),
    ("GET", "/recommend/{user_id}"): _p(Scope.READ_RECOMMENDATIONS, shopper=True),
    ("GET", "/recommend/{user_id}/explanation/stream"): _p(
        Scope.READ_RECOMMENDATIONS, shopper=True
    ),
    ("POST", "/events"): _p(Scope.WRITE_EVENTS, shopper=True),
    ("POST", "/events/batch"): _p(Scope.WRITE_EVENTS, shopper=True),
    ("POST", "/chat"): _p(Scope.READ_RECOMMENDATIONS, shopper=True, guest=True),
    ("GET", "/admin/overview"): _p(roles=("admin", "editor")),
    ("GET", "/admin/evaluation"): ADMIN_ONLY,
    # A/B experiments and online metrics (issue 8): editors may read, admins decide.
    ("POST", "/experiments"): ADMIN_ONLY,
    ("GET", "/experiments"): PROMPT_EDITING,
    ("GET", "/experiments/{experiment_id}"): PROMPT_EDITING,
    ("GET", "/experiments/{experiment_id}/report"): PROMPT_EDITING,
    ("POST", "/experiments/{experiment_id}/stop"): ADMIN_ONLY,
    ("POST", "/experiments/{experiment_id}/promote"): ADMIN_ONLY,
    ("GET", "/analytics/summary"): _p(Scope.READ_METRICS, roles=("admin", "editor")),
    ("GET", "/analytics/segments"): _p(Scope.READ_METRICS, roles=("admin", "editor")),
    # The storefront that sends a shopper's events knows where they are (or the shopper does).
    ("PUT", "/users/{user_id}/location"): _p(Scope.WRITE_EVENTS, shopper=True),
}

PREFIX_POLICIES: list[tuple[str, Policy]] = [
    ("/admin/prompts", PROMPT_EDITING),
    ("/admin/", ADMIN_ONLY),
]


def policy_for(method: str, route: str) -> Policy:
    if method == "HEAD":
        method = "GET"
    found = POLICIES.get((method, route))
    if found is not None:
        return found
    for prefix, policy in PREFIX_POLICIES:
        if route.startswith(prefix):
            return policy
    return ADMIN_ONLY
