"""Explanations off the request path, with a fake LLM at our interface: ``GET /recommend``
answers with the template marked pending, a job writes the checked text in the background,
and the next request carries it; or the template stays, with a counted reason.

The app's own explainer threads are not started here (``in_process=False``): each test runs
the queued jobs itself, so what ran and in which order is known. ``@uses_fake_llm`` runs the
app on a fake LLM with the test's answers.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from backend.adapters import Adapters, default_adapters
from backend.config import Settings
from backend.infra.explanation_queue import PREPARE, ExplanationJob, RedisExplanationQueue
from backend.jobs.explanations import ExplanationWorkers
from backend.llm.client import LLMUnavailable
from backend.main import create_app
from backend.wiring import Components, build_components
from tests.api.test_explanation_stream import fitting
from tests.api.test_observability import metric
from tests.factories import Shop
from tests.llm.fakes import FakeLLM, uses_fake_llm

PARAMS = {"top_n": 2, "algorithm": "weighted"}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the database layer is tested on both elsewhere; this is about the flow."""
    return f"sqlite:///{tmp_path / 'shopwise.db'}"


def without_explainer_threads(built: Components) -> Components:
    """The components as wired, but the app starts no explainer threads and a failed
    attempt does not wait before the next: the test runs the queued jobs itself."""
    if built.explanations.workers is not None:
        built.explanations.workers.runner.wait = lambda seconds: False
    return dataclasses.replace(
        built, explanations=dataclasses.replace(built.explanations, in_process=False)
    )


@pytest.fixture
def components(settings: Settings, adapters: Adapters, db: Engine) -> Iterator[Components]:
    built = build_components(settings, adapters)
    yield without_explainer_threads(built)
    built.db.dispose()


def run_jobs(components: Components) -> list[str]:
    workers = components.explanations.workers
    results = []
    while jobs := workers.queue.take("test", timeout=0.01):
        for job in jobs:
            results.append(workers.runner.run(job))
            workers.queue.done(job)
    return results


def fits(messages) -> str:
    """An answer that passes the check for any shopper: one plain reason per product."""
    return fitting(messages).replace("Hi Alice!", "Here are your picks.")


def lying(messages) -> str:
    return fitting(messages).replace("A fine match.", "Now 50% off, only $5!")


def url(shop: Shop, name: str = "alice") -> str:
    return f"/recommend/{shop.users[name].id}"


@uses_fake_llm(fitting)
def test_the_storefront_gets_the_template_at_once_then_the_checked_llm_text(
    api, shop, components, fake_llm
):
    fake = fake_llm
    first = api.get(url(shop), params=PARAMS).json()
    assert (first["explanation_status"], first["explanation_source"]) == ("pending", "template")
    assert first["llm_explanation"].startswith("Hi Alice Lee!")  # the template
    assert first["fallback_reason"] is None
    alice = shop.users["alice"].id
    assert first["explanation_stream"] == (
        f"/recommend/{alice}/explanation/stream?top_n=2&algorithm=weighted"
    )
    assert fake.history == []  # the model was not asked inside the request
    assert api.get(url(shop), params=PARAMS).json()["explanation_status"] == "pending"

    assert run_jobs(components) == ["llm"]
    ready = api.get(url(shop), params=PARAMS).json()
    assert (ready["explanation_status"], ready["explanation_source"]) == ("ready", "llm")
    assert ready["cached"] is True  # the job settled the cached answer: no new ranking
    assert ready["llm_explanation"].startswith("Hi Alice!")
    assert ready["explanation_stream"] is None
    assert [p["id"] for p in ready["recommended_products"]] == [
        p["id"] for p in first["recommended_products"]
    ]
    assert api.get(url(shop), params=PARAMS).json()["llm_explanation"] == ready["llm_explanation"]
    assert len(fake.history) == 1  # asked once, for this list

    stats = api.get("/explanations/stats").json()["jobs"]
    assert stats["submitted"] == {"queued": 1}
    assert stats["finished"] == {"llm": 1}
    assert stats["queue"]["depth"] == 0
    assert stats["served_by_source"] == {"template": 2, "llm": 2}
    assert stats["llm_share"] == 0.5


@uses_fake_llm(lying, lying)  # the answer and its retry
def test_an_answer_failing_the_check_leaves_the_template_with_its_reason(
    api, shop, components, fake_llm
):
    fake = fake_llm
    api.get(url(shop), params=PARAMS)
    [result] = run_jobs(components)
    assert result == "template:check_failed:unsupported_number"
    body = api.get(url(shop), params=PARAMS).json()
    assert (body["explanation_status"], body["explanation_source"]) == ("template", "template")
    assert body["fallback_reason"] == "check_failed:unsupported_number"
    assert "50% off" not in body["llm_explanation"]
    assert run_jobs(components) == []  # not queued again: the marker holds
    assert len(fake.history) == 2
    jobs = api.get("/explanations/stats").json()["jobs"]
    assert jobs["finished"] == {"check_failed:unsupported_number": 1}


@uses_fake_llm(*[LLMUnavailable("connection refused")] * 3)
def test_a_model_that_is_down_is_retried_then_the_template_stays_with_a_counted_reason(
    api, shop, components, fake_llm
):
    fake = fake_llm
    assert api.get(url(shop), params=PARAMS).json()["explanation_status"] == "pending"
    assert run_jobs(components) == ["dropped:llm_unavailable"]
    assert len(fake.history) == 3  # three attempts
    body = api.get(url(shop), params=PARAMS).json()
    assert (body["explanation_status"], body["fallback_reason"]) == ("template", "llm_unavailable")
    assert body["recommended_products"]  # nothing lost: the list and the template are there
    jobs = api.get("/explanations/stats").json()["jobs"]
    assert jobs["dropped"] == {"llm_unavailable": 1}


def queued_job(components: Components) -> ExplanationJob:
    queue = components.explanations.workers.queue
    [job] = queue.take("test", timeout=0.5)
    queue.done(job)
    return job


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"item_ids": "reversed"}, "stale"),  # another list is shown now
     ({"version": "an older prompt|model"}, "stale"),  # a prompt edit since
     ({"created_at": 0.0}, "expired")],  # the shopper is long gone
)  # fmt: skip
@uses_fake_llm()
def test_a_job_that_outlived_its_ranking_is_dropped_without_asking_the_model(
    api, shop, components, change, reason, fake_llm
):
    fake = fake_llm
    api.get(url(shop), params=PARAMS)
    job = queued_job(components)
    if change.get("item_ids") == "reversed":
        change = {"item_ids": job.item_ids[::-1]}
    runner = components.explanations.workers.runner
    assert runner.run(dataclasses.replace(job, **change)) == f"dropped:{reason}"
    assert fake.history == []
    assert api.get("/explanations/stats").json()["jobs"]["dropped"] == {reason: 1}


@uses_fake_llm(fits)
def test_an_event_changes_the_ranking_and_a_new_job_is_prepared_for_the_new_list(
    api, shop, components
):
    bob = shop.users["bob"].id
    before = api.get(url(shop, "bob")).json()
    old_job = queued_job(components)
    skillet = shop.products["Cast Iron Skillet"].id
    response = api.post(
        "/events", json={"user_id": str(bob), "action": "purchase", "product_id": str(skillet)}
    )
    assert response.status_code == 201, response.text
    components.stream.join()  # the event worker has processed it
    queue = components.explanations.workers.queue
    # The new list is ranked once the shopper's events pause (the debounce), then prepared.
    wait = components.settings.precompute_debounce_seconds + 5
    [prepared] = queue.take("test", timeout=wait)
    assert prepared.priority == PREPARE and prepared.user_id == bob
    assert prepared.item_ids != old_job.item_ids  # the purchase moved the list
    runner = components.explanations.workers.runner
    assert runner.run(old_job) == "dropped:stale"
    assert runner.run(prepared) == "llm"
    queue.done(prepared)
    after = api.get(url(shop, "bob")).json()
    assert [p["id"] for p in after["recommended_products"]] != [
        p["id"] for p in before["recommended_products"]
    ]
    assert (after["explanation_status"], after["explanation_source"]) == ("ready", "llm")


@uses_fake_llm(fitting)
def test_explain_wait_asks_the_model_in_the_request_and_template_never_does(
    api, shop, components, fake_llm
):
    fake = fake_llm
    template = api.get(url(shop), params={**PARAMS, "explain": "template"}).json()
    assert (template["explanation_status"], template["fallback_reason"]) == (
        "template",
        "template_requested",
    )
    assert fake.history == [] and run_jobs(components) == []
    waited = api.get(url(shop), params={**PARAMS, "explain": "wait"}).json()
    assert (waited["explanation_status"], waited["explanation_source"]) == ("ready", "llm")
    assert len(fake.history) == 1
    # The default now finds the text the waiting request cached.
    assert api.get(url(shop), params=PARAMS).json()["explanation_status"] == "ready"


def test_without_an_llm_the_template_is_final_and_nothing_is_queued(api, shop, components):
    body = api.get(url(shop), params=PARAMS).json()
    assert (body["explanation_status"], body["fallback_reason"]) == ("template", "no_api_key")
    assert body["explanation_stream"] is None
    assert components.explanations is not None and components.explanations.jobs is None
    assert "jobs" in api.get("/explanations/stats").json()


@uses_fake_llm(fitting)
def test_a_full_queue_serves_the_template_and_the_next_visit_tries_again(api, shop, components):
    queue = components.explanations.workers.queue
    queue.max_jobs = 0
    body = api.get(url(shop), params=PARAMS).json()
    assert (body["explanation_status"], body["fallback_reason"]) == ("template", "queue_full")
    queue.max_jobs = 10
    assert api.get(url(shop), params=PARAMS).json()["explanation_status"] == "pending"
    assert run_jobs(components) == ["llm"]


@uses_fake_llm(fitting)
def test_metrics_and_health_show_the_queue_jobs_and_the_llm_share(api, shop, components):
    api.get(url(shop), params=PARAMS)
    text = api.get("/metrics").text
    assert metric(text, "shopwise_explanation_queue_depth") == 1
    assert metric(text, "shopwise_explanation_jobs_total", stage="submitted", result="queued") == 1
    run_jobs(components)
    api.get(url(shop), params=PARAMS)
    text = api.get("/metrics").text
    assert metric(text, "shopwise_explanation_queue_depth") == 0
    assert metric(text, "shopwise_explanation_jobs_total", stage="finished", result="llm") == 1
    served = "shopwise_explanations_served_total"
    assert metric(text, served, source="llm", status="ready") == 1
    assert metric(text, served, source="template", status="pending") == 1
    health = api.get("/health").json()["components"]["explanations"]
    assert health["status"] == "ok"
    assert "in-process queue: 0 job(s)" in health["detail"]
    assert "50% of answers served with LLM text" in health["detail"]


@uses_fake_llm()
def test_workers_never_ask_the_model_more_often_at_once_than_the_concurrency(
    api, shop, components, fake_llm
):
    lock, release = threading.Lock(), threading.Event()
    active = peak = 0

    def slow(messages):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        release.wait(timeout=30)
        with lock:
            active -= 1
        return fits(messages)

    fake_llm.add(slow, slow, slow)
    for name in ("alice", "bob", "dave"):
        assert api.get(url(shop, name), params=PARAMS).json()["explanation_status"] == "pending"
    background = components.explanations
    workers = ExplanationWorkers(
        queue=background.workers.queue, runner=background.workers.runner, concurrency=2
    )
    workers.start()
    try:
        deadline = time.monotonic() + 30
        while active < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert active == 2  # two at once: the limit is reached...
        release.set()
        while background.stats.snapshot()["finished"].get("llm", 0) < 3:
            assert time.monotonic() < deadline, background.stats.snapshot()
            time.sleep(0.01)
    finally:
        release.set()
        workers.stop()
    assert peak == 2  # ...and never passed
    assert all(
        api.get(url(shop, n), params=PARAMS).json()["explanation_source"] == "llm"
        for n in ("alice", "bob", "dave")
    )


def test_on_redis_the_job_travels_through_the_stream_to_another_process(
    settings, shop, redis_url, redis_prefix
):
    """With REDIS_URL the API only queues; `shopwise worker` (here: its runner, run by the
    test) takes the job from the stream, and every API replica then serves the text."""
    config = settings.model_copy(update={"redis_url": redis_url, "redis_key_prefix": redis_prefix})
    built = build_components(
        config, dataclasses.replace(default_adapters(config), llm=FakeLLM([fits]))
    )
    components = without_explainer_threads(built)
    try:
        queue = components.explanations.workers.queue
        assert isinstance(queue, RedisExplanationQueue)
        with TestClient(create_app(components=components)) as api:
            assert api.get(url(shop), params=PARAMS).json()["explanation_status"] == "pending"
            assert queue.status().depth == 1
            assert run_jobs(components) == ["llm"]
            body = api.get(url(shop), params=PARAMS).json()
        assert (body["explanation_status"], body["explanation_source"]) == ("ready", "llm")
        assert queue.status().depth == 0
    finally:
        built.db.dispose()
