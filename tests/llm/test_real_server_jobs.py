"""The storefront with a real local model server: ``GET /recommend`` does not wait for it.

llama.cpp's server on SmolLM2 135M Instruct (``tests/llm/real_server.py``) takes seconds per
answer on a shared CPU. The default request answers with the template marked pending; the
explainer thread asks the model through the real SDK and HTTP, runs the evidence check and
caches the result; polling the same URL, as a storefront would, then gets the checked LLM
text. This small model's own wording rarely passes the check; under the default grammar
(``LLM_GRAMMAR=auto``) its retry is made of the facts, verbatim, and passes: the test
requires the checked LLM text to reach the shopper. Its pass rate is measured in bench/.
"""

from __future__ import annotations

import time

import pytest

from tests.api.test_observability import metric
from tests.llm.test_real_server_e2e import app_with_llm

pytestmark = pytest.mark.llm_server

POLL_SECONDS = 300.0  # a few answers' worth of CPU on a busy machine


@pytest.fixture
def shop(db):
    from tests.factories import build_shop

    return build_shop(db)


@pytest.fixture
def database_url(tmp_path):
    return f"sqlite:///{tmp_path / 'shopwise.db'}"


def test_recommend_answers_pending_at_once_then_the_real_models_checked_text(
    llm_server, tmp_path, database_url, shop
):
    alice = shop.users["alice"].id
    params = {"top_n": 2, "algorithm": "weighted"}
    with app_with_llm(llm_server, tmp_path, database_url) as (client, _):
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
    assert (body["explanation_status"], body["explanation_source"], body["fallback_reason"]) == (
        "ready",
        "llm",
        None,
    ), body
    assert jobs["finished"] == {"llm": 1}
    # The shopper-facing text names each product (the rendering of a checked answer).
    for product in body["recommended_products"]:
        assert product["name"] in body["llm_explanation"]
    assert body["llm_explanation"] != first["llm_explanation"]
    # Asked through the real SDK: the answer and at most one retry, nothing else.
    assert metric(text, "shopwise_llm_calls_total", outcome="ok") in (1, 2)
    assert jobs["tokens_per_second"] is not None and jobs["tokens_per_second"] > 0
    assert jobs["queue"]["depth"] == 0
