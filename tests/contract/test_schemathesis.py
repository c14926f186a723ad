"""Property-based requests against our own OpenAPI schema, at full strength: every check,
valid (fuzzing) and invalid (negative) data per operation, then stateful sequences that
follow the links between operations. No 5xx, every response as documented.

Runs with auth on and an admin token (the admin role passes every route's policy), over
the seeded demo shop, in-process (ASGI). Figures: at least 3,000 requests in all.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from backend.config import PROJECT_ROOT, load_settings
from backend.db.engine import make_engine
from backend.db.migrate import upgrade
from backend.db.seed import load_seed
from backend.main import create_app
from backend.wiring import build_components

POSITIVE_PER_OPERATION = 45
NEGATIVE_PER_OPERATION = 35
STATEFUL_SCENARIOS = 70
MIN_REQUESTS = 3000


def valid_data_is_accepted(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """``positive_data_acceptance``, with one principled exception.

    A schema-valid request must pass our validation: a 422 for a field's own constraint
    (a type, a length, a pattern, our text and URL rules) fails here, since it means the
    schema promised more than the API accepts. Two kinds of 422 are rules a JSON schema
    cannot express, and the request was rightly refused with a message naming the problem:
    a domain rule (no ``errors``: an event for a user that does not exist, a rollback of a
    template without versions), and a rule across fields, raised by a model's validator as
    a plain ``value_error`` (latitude needs longitude, a view event needs a product, variant
    names must differ, blend weights must not all be 0).
    """
    if any(value is None for value in (case.path_parameters or {}).values()):
        # A stateful link filled a path parameter from a field that is rightly null (a guest's
        # user_id): the request sent "None", which is not schema-valid data.
        return None
    if response.status_code == 422:
        try:
            body = response.json()
        except ValueError:
            body = None
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(body, dict) and errors is None:
            return None
        if errors and all(e.get("type") == "value_error" for e in errors):
            return None
    return positive_data_acceptance(ctx, response, case)


CHECKS: dict[str, Any] = {
    "excluded_checks": [positive_data_acceptance],
    "additional_checks": [valid_data_is_accepted],
}


@pytest.fixture(scope="module")
def secured_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    config = load_settings(
        _env_file=None,
        data_dir=tmp,
        snapshot_refresh_seconds=0,
        auth_mode="on",
        jwt_secret="x" * 40,
        rate_limit_per_minute=1_000_000,
        rate_limit_per_key_per_minute=1_000_000,
        login_attempts_per_minute=1_000_000,
        auth_failures_per_minute=1_000_000,
        prompts_dir=PROJECT_ROOT / "prompts",
    )
    engine = make_engine(config.database_url)
    upgrade(engine)
    load_seed(engine, PROJECT_ROOT / "seed_data")
    engine.dispose()
    components = build_components(config)
    components.auth.create_admin("fuzzer", "a-long-enough-password", "admin")
    app = create_app(components=components)
    with TestClient(app) as client:  # runs the lifespan (snapshot, workers)
        token = client.post(
            "/auth/login", json={"username": "fuzzer", "password": "a-long-enough-password"}
        ).json()["access_token"]
        app.state.fuzz_headers = {"Authorization": f"Bearer {token}"}
        yield app
    components.db.dispose()


def _headers_for(app: Any, case: schemathesis.Case) -> dict[str, str]:
    """The fuzzer's credential; logging out ends the token it is sent with, so that call gets
    a login of its own and the shared token stays valid for every later request."""
    if case.operation.method.upper() == "POST" and case.operation.path == "/auth/logout":
        issued = app.state.components.auth.login("fuzzer", "a-long-enough-password")
        return {"Authorization": f"Bearer {issued.access_token}"}
    return dict(app.state.fuzz_headers)


def _hypothesis(max_examples: int, **extra: Any) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        # No shrinking: a failure is reported as found (with its curl line), and a failing
        # operation does not cost minutes of minimisation.
        phases=[Phase.explicit, Phase.generate],
        **extra,
    )


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {str(exc)[:1500]}"
    for inner in getattr(exc, "exceptions", ())[:3]:  # what a FlakyFailure or group holds
        text += "\n  " + _describe(inner).replace("\n", "\n  ")
    return text


def _fuzz(strategy: Any, examples: int, label: str, sent: Counter[str], app: Any) -> None:
    @_hypothesis(examples)
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        sent[label] += 1
        case.call_and_validate(headers=_headers_for(app, case), **CHECKS)

    run()


@pytest.mark.timeout(900)  # a few minutes on one core; the suite's default is 300 s
def test_api_conforms_to_its_schema(secured_app: Any) -> None:
    started = time.perf_counter()
    schema = schemathesis.openapi.from_asgi("/openapi.json", secured_app)
    headers = dict(secured_app.state.fuzz_headers)
    sent: Counter[str] = Counter()
    failures: dict[str, str] = {}

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in (
            (GenerationMode.POSITIVE, POSITIVE_PER_OPERATION),
            (GenerationMode.NEGATIVE, NEGATIVE_PER_OPERATION),
        ):
            label = f"{mode.value} {operation.method.upper()} {operation.path}"
            try:
                _fuzz(
                    operation.as_strategy(generation_mode=mode), examples, label, sent, secured_app
                )
            except Unsatisfiable:
                # Negative mode on an operation without parameters or body: nothing to make
                # invalid (its unsupported methods and headers are still sent by other phases).
                assert mode is GenerationMode.NEGATIVE, label
            except (Exception, BaseExceptionGroup) as exc:  # collect every failure, report all
                failures[label] = _describe(exc)

    class Stateful(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": _headers_for(secured_app, case)}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            sent["stateful"] += 1
            super().after_call(response, case)

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            case.validate_response(response, headers=headers, recorder=self.recorder, **CHECKS)

    try:
        Stateful.run(settings=_hypothesis(STATEFUL_SCENARIOS, stateful_step_count=8))
    except (Exception, BaseExceptionGroup) as exc:
        failures["stateful"] = _describe(exc)

    total = sum(sent.values())
    print(  # noqa: T201 - the figures for the report
        f"\nschemathesis: {total} requests ({sent['stateful']} stateful), "
        f"{len(failures)} failing operation(s), {time.perf_counter() - started:.0f} s"
    )
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
    assert total >= MIN_REQUESTS, sent
