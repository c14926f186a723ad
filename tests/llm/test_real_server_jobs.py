"""The storefront with a real local model server: ``GET /recommend`` does not wait for it.

llama.cpp's server on SmolLM2 135M Instruct (``tests/llm/real_server.py``) takes seconds per
answer on a shared CPU. The default request answers with the template marked pending; the
explainer thread asks the model through the real SDK and HTTP, runs the evidence check and
caches the result; polling the same URL, as a storefront would, then gets the checked LLM
text, or the template with the reason the model's answer was rejected (this small model
rarely passes: the flow is under test here, its quality is measured in bench/).
"""

from __future__ import annotations

import time

import pytest

from tests.api.test_observability import metric
from tests.llm.test_real_server_e2e import MODEL_FAILURES, app_with_llm

pytestmark = pytest.mark.llm_server

POLL_SECONDS = 300.0  # a few answers' worth of CPU on a busy machine


@pytest.fixture
def shop(db):
    from tests.factories import build_shop

    return build_shop(db)


@pytest.fixture
def database_url(tmp_path):
    return f"sqlite:///{tmp_path / 'shopwise.db'}"


def test_recommend_answers_pending_at_once_then_the_checked_text_or_a_counted_rejection(
    llm_server, tmp_path, database_url, shop
):
    alice = shop.users["alice"].id
    params = {"top_n": 2, "algorithm": "weighted"}
    with app_with_llm(llm_server, tmp_path, database_url, llm_max_tokens=64) as (client, _):
        first = client.get(f"/recommend/{alice}", params=params).json()
        # The request did not wait for the model (the deadline would allow it 120 s).
        assert (first["explanation_status"], first["explanation_source"]) == (
            "pending",
            "template",
        )
        assert first["explanation_stream"].startswith(f"/recommend/{alice}/explanation/stream")
        deadline = time.monotonic() + POLL_SECONDS
        body = first
        while body["explanation_status"] == "pending":
            assert time.monotonic() < deadline, "the explanation job did not finish"
            time.sleep(0.5)
            body = client.get(f"/recommend/{alice}", params=params).json()
        jobs = client.get("/explanations/stats").json()["jobs"]
        text = client.get("/metrics").text
    assert body["recommended_products"] == first["recommended_products"]
    if body["explanation_status"] == "ready":
        assert (body["explanation_source"], body["fallback_reason"]) == ("llm", None)
        assert jobs["finished"] == {"llm": 1}
    else:
        assert body["explanation_status"] == "template"
        assert body["fallback_reason"].startswith(MODEL_FAILURES), body
        assert jobs["finished"] == {body["fallback_reason"]: 1}
        assert body["llm_explanation"].startswith("Hi Alice Lee!")  # the template
    # Asked through the real SDK: the answer and at most one retry, nothing else.
    assert metric(text, "shopwise_llm_calls_total", outcome="ok") in (1, 2)
    assert jobs["tokens_per_second"] is not None and jobs["tokens_per_second"] > 0
    assert jobs["queue"]["depth"] == 0
