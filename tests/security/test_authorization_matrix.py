"""Every route × every kind of credential, with authentication on.

The routes come from the app's OpenAPI schema, the expected answer from the route's one
declared decision in ``backend/api/policies.py``: a route without its own line there fails
here, so no endpoint ships without someone deciding who may call it. Denied calls must be
exactly 401 (no or bad credential) or 403 (a good credential without the right); allowed
ones must get past authorization (anything but 401/403) and never a 500.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import pytest
from sqlmodel import Session

from backend.api.policies import POLICIES, Policy
from backend.db.engine import session_scope
from backend.db.models import User
from backend.security.api_keys import SHOPPER_SCOPES, Scope
from tests.factories import make_user
from tests.security.conftest import PASSWORD, SECRET, Secured, bearer

ALL_SCOPES = frozenset(s.value for s in Scope)
# Calls that end the credential or its user: each gets fresh credentials and a restored user.
DESTRUCTIVE = {("POST", "/auth/logout"), ("DELETE", "/users/{user_id}")}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the decisions do not depend on the database (test_attacks runs both)."""
    return f"sqlite:///{tmp_path / 'matrix.db'}"


@dataclass(frozen=True)
class Kind:
    """A kind of credential and what the policy table says it is."""

    name: str
    role: str  # anonymous | invalid | key | shopper | guest | editor | admin
    scopes: frozenset[str] = field(default_factory=frozenset)  # a key's, or a token's ceiling
    user: str | None = None  # the shopper the token belongs to


KINDS = [
    Kind("anonymous", "anonymous"),
    Kind("guest token", "guest", SHOPPER_SCOPES),
    Kind("shopper token, own user", "shopper", SHOPPER_SCOPES, user="alice"),
    Kind("shopper token, another user", "shopper", SHOPPER_SCOPES, user="bob"),
    Kind(
        "shopper token from a recommendations key",
        "shopper",
        frozenset({Scope.READ_RECOMMENDATIONS.value}),
        user="alice",
    ),
    *[Kind(f"key {scope.value}", "key", frozenset({scope.value})) for scope in Scope],
    Kind("key with every scope", "key", ALL_SCOPES),
    Kind("revoked key", "invalid"),
    Kind("expired token", "invalid"),
    Kind("forged token", "invalid"),
    Kind("logged-out token", "invalid"),
    Kind("shopper token of a revoked key", "invalid"),
    Kind("editor", "editor"),
    Kind("admin", "admin"),
]


def expected(policy: Policy, kind: Kind, acts_on: set[str]) -> int | None:
    """The status the declared decision demands; None: allowed (past authorization)."""
    if kind.role == "invalid":
        return 401  # a bad credential is refused even where none is needed
    if policy.public:
        return None
    if kind.role == "anonymous":
        return 401
    if kind.role == "admin" or kind.role in policy.roles:
        return None
    if kind.role == "key":
        return None if kind.scopes & policy.scopes else 403
    if kind.role in ("shopper", "guest") and policy.shopper:
        if not policy.own_token and not kind.scopes & policy.scopes:
            return 403
        if kind.role == "guest":
            return None if policy.guest and not acts_on else 403
        return None if acts_on <= {kind.user} else 403
    return 403


class Credentials:
    """Makes each kind of credential (fresh ones after a call that may end them)."""

    def __init__(self, s: Secured) -> None:
        self.s = s
        self.cache: dict[str, dict[str, str]] = {}

    def headers(self, kind: Kind) -> dict[str, str]:
        if kind.name not in self.cache:
            self.cache[kind.name] = self._make(kind)
        return self.cache[kind.name]

    def forget(self) -> None:
        self.cache.clear()

    def _key(self, *scopes: str) -> tuple[dict[str, str], uuid.UUID]:
        created = self.s.components.auth.create_key("matrix", scopes)
        return {"X-API-Key": created.api_key}, created.id

    def _mint(self, scopes: frozenset[str], user: str | None) -> dict[str, str]:
        minter, _ = self._key(Scope.ACT_FOR_SHOPPERS.value, *scopes)
        return self.s.mint(minter, user)[0]

    def _make(self, kind: Kind) -> dict[str, str]:
        auth, client = self.s.components.auth, self.s.client
        match kind.name:
            case "anonymous":
                return {}
            case "revoked key":
                headers, key_id = self._key(Scope.READ_RECOMMENDATIONS.value)
                auth.revoke_key(key_id)
                return headers
            case "expired token" | "forged token":
                secret = SECRET if kind.name == "expired token" else "f" * 40
                exp = 1 if kind.name == "expired token" else 4102444800
                claims = {"sub": "ada", "role": "admin", "iss": "shopwise", "exp": exp,
                          "jti": uuid.uuid4().hex}  # fmt: skip
                return bearer(jwt.encode(claims, secret, algorithm="HS256"))
            case "logged-out token":
                headers = self._mint(SHOPPER_SCOPES, "alice")
                assert client.post("/auth/logout", headers=headers).status_code == 204
                return headers
            case "shopper token of a revoked key":
                minter, key_id = self._key(Scope.ACT_FOR_SHOPPERS.value, *SHOPPER_SCOPES)
                headers = self.s.mint(minter, "alice")[0]
                auth.revoke_key(key_id)
                return headers
            case "editor" | "admin":
                name = "eddie" if kind.name == "editor" else "ada"
                r = client.post("/auth/login", json={"username": name, "password": PASSWORD})
                return bearer(r.json()["access_token"])
        if kind.role == "key":
            return self._key(*kind.scopes)[0]
        return self._mint(kind.scopes, kind.user)


def _routes(s: Secured) -> Iterator[tuple[str, str]]:
    for path, operations in s.client.app.openapi()["paths"].items():
        for method in operations:
            yield method.upper(), path


def _request(s: Secured, method: str, path: str, kind: Kind) -> tuple[str, dict | None, set[str]]:
    """The concrete call: existing ids where the route needs them, the target user (alice)
    in the path and, for a shopper, in the body too; and whom the call acts for."""
    alice = s.uid("alice")
    url = (
        path.replace("{user_id}", alice)
        .replace("{product_id}", str(s.shop.products["Desk Lamp"].id))
        .replace("{key_id}", str(uuid.uuid4()))
        .replace("{token_id}", "0" * 32)
        .replace("{experiment_id}", str(uuid.uuid4()))
        .replace("{name}", "explanation.j2")
    )
    acts_on = {"alice"} if "{user_id}" in path else set()
    body: dict | None = None
    if method in ("POST", "PUT", "PATCH"):
        body = {}
        if kind.role != "guest":
            body["user_id"] = alice
            acts_on = {"alice"}
    return url, body, acts_on


def _restore_alice(s: Secured) -> None:
    with Session(s.components.db) as session:
        present = session.get(User, s.shop.users["alice"].id) is not None
    if not present:
        with session_scope(s.components.db) as session:
            session.add(make_user("alice", "Alice Lee"))


def test_every_route_has_its_own_decision_and_every_decision_a_route(secured):
    routes = set(_routes(secured))
    undecided = sorted(routes - POLICIES.keys())
    assert not undecided, f"add these routes to backend/api/policies.py: {undecided}"
    stale = sorted(POLICIES.keys() - routes)
    assert not stale, f"policies for routes that do not exist: {stale}"


def test_the_authorization_matrix(secured):
    s = secured
    credentials = Credentials(s)
    wrong: list[str] = []
    cases = 0
    dirty = False
    for method, path in sorted(_routes(s)):
        policy = POLICIES.get((method, path))
        assert policy is not None, f"{method} {path} has no decision in policies.py"
        for kind in KINDS:
            if dirty:  # the last call may have ended its credential or erased alice
                credentials.forget()
                _restore_alice(s)
            dirty = (method, path) in DESTRUCTIVE
            url, body, acts_on = _request(s, method, path, kind)
            want = expected(policy, kind, acts_on)
            r = s.client.request(method, url, json=body, headers=credentials.headers(kind))
            cases += 1
            if want is None:
                ok = r.status_code not in (401, 403) and (
                    r.status_code < 500 or r.status_code == 503
                )
            else:
                ok = r.status_code == want
            if not ok:
                wrong.append(
                    f"{method} {path} as {kind.name}: got {r.status_code}, "
                    f"want {want or 'allowed'}: {r.text[:120]}"
                )
    print(f"authorization matrix: {cases} (route, credential) cases")  # noqa: T201
    assert not wrong, f"{len(wrong)} of {cases} cases wrong:\n" + "\n".join(wrong)
    assert cases >= len(POLICIES) * len(KINDS)


def test_the_table_keeps_its_promises():
    """Invariants of the threat model that no single line may break."""
    for (method, path), policy in POLICIES.items():
        where = f"{method} {path}"
        if path.startswith(("/admin", "/users", "/auth/shopper-session")) or method == "DELETE":
            assert not policy.public, where
        if path.startswith("/users/{user_id}"):
            # Personal data never with a recommendations key, and shoppers only their own.
            assert Scope.READ_RECOMMENDATIONS.value not in policy.scopes, where
        if policy.guest:
            assert policy.shopper, where
        if policy.shopper and not policy.own_token:
            # Tokens are capped by what they may carry: a route no shopper scope opens is
            # closed to every shopper token.
            assert policy.scopes & SHOPPER_SCOPES, where
        if path.startswith("/admin/") and not path.startswith(("/admin/prompts", "/admin/over")):
            assert policy.roles == {"admin"} and not policy.scopes, where
    assert POLICIES[("GET", "/users/{user_id}")].scopes == {Scope.READ_USERS.value}
    assert POLICIES[("GET", "/users/{user_id}/export")].scopes == {Scope.READ_USERS.value}
    assert POLICIES[("DELETE", "/users/{user_id}")].scopes == {Scope.ERASE_USERS.value}
    assert POLICIES[("POST", "/auth/shopper-session")].scopes == {Scope.ACT_FOR_SHOPPERS.value}
