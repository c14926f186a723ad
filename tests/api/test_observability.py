"""Request ids, structured logs, metrics, security headers and body limits."""

from __future__ import annotations

import io
import json
import logging
import uuid

from prometheus_client.parser import text_string_to_metric_families

from backend.observability.logging import JsonFormatter, redact


def metric(body: str, name: str, **labels: str) -> float:
    """One sample of a /metrics page (0 when absent: a counter never incremented)."""
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_request_id_is_accepted_and_returned(api):
    r = api.get("/products", headers={"X-Request-ID": "storefront-abc.123"})
    assert r.headers["x-request-id"] == "storefront-abc.123"
    generated = api.get("/products", headers={"X-Request-ID": "bad id with spaces\n"})
    assert generated.headers["x-request-id"] != "bad id with spaces\n"
    assert len(generated.headers["x-request-id"]) == 32


def test_every_log_line_of_a_request_carries_its_id(api):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("shopwise.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        api.get("/categories", headers={"X-Request-ID": "trace-42"})
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["request_id"] == "trace-42"
    assert line["status"] == 200 and line["msg"].startswith("GET /categories 200")


def test_secrets_never_reach_a_log_line():
    text = redact(
        'Authorization: Bearer eyJhbGciOi.abc.def key=sk-live1234567890 password="hunter2" '
        "hash=$argon2id$v=19$m=65536$abc"
    )
    for secret in ("eyJhbGciOi", "sk-live1234567890", "hunter2", "$argon2id$v=19"):
        assert secret not in text


def test_metrics_expose_latency_per_route_template(api, shop):
    api.get(f"/recommend/{shop.users['alice'].id}")
    api.get("/health/ready")
    body = api.get("/metrics").text
    assert 'shopwise_http_request_duration_seconds_bucket{le="0.005",method="GET",' in body
    assert 'route="/recommend/{user_id}",status="200"' in body
    assert 'shopwise_component_up{component="database"} 1.0' in body


def test_security_headers(api):
    r = api.get("/products")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "content-security-policy" not in api.get("/docs").headers


def test_oversized_bodies_are_refused_with_413(api, shop):
    big = {"user_id": str(shop.users["bob"].id), "action": "search", "query": "x" * 2_000_000}
    r = api.post("/events", json=big)
    assert r.status_code == 413
    assert "larger than" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while streaming
        yield b'{"user_id": "' + str(shop.users["bob"].id).encode() + b'", "query": "'
        for _ in range(40):
            yield b"y" * 50_000
        yield b'", "action": "search"}'

    r = api.post("/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_readiness_reports_each_component(api):
    r = api.get("/health/ready")
    assert r.status_code == 200
    assert set(r.json()["components"]) >= {"database", "index", "cache", "llm"}


def test_metrics_count_answers_cache_lookups_events_and_worker_progress(api, shop, components):
    alice = str(shop.users["alice"].id)
    api.get(f"/recommend/{alice}", params={"top_n": 3})  # computed
    api.get(f"/recommend/{alice}", params={"top_n": 3})  # the cached answer
    view = {"user_id": alice, "action": "view", "product_id": str(shop.products["Desk Lamp"].id)}
    assert api.post("/events", json=view | {"event_id": "m-1"}).status_code == 201
    assert api.post("/events", json=view | {"event_id": "m-1"}).status_code == 200  # repeat
    batch = {"events": [view | {"product_id": str(uuid.uuid4())}, view, view]}
    assert api.post("/events/batch", json=batch).json()["rejected"] == 1
    assert components.stream is not None
    components.stream.join()  # type: ignore[attr-defined]

    body = api.get("/metrics").text
    assert metric(body, "shopwise_cache_requests_total", cache="response", result="miss") == 1
    assert metric(body, "shopwise_cache_requests_total", cache="response", result="hit") == 1
    served = "shopwise_recommendations_total"
    assert metric(body, served, algorithm="hybrid", explanation_source="template") == 1
    assert metric(body, served, algorithm="hybrid", explanation_source="cached") == 1
    assert metric(body, "shopwise_events_total", outcome="accepted") == 3
    assert metric(body, "shopwise_events_total", outcome="duplicate") == 1
    assert metric(body, "shopwise_events_total", outcome="rejected") == 1
    processed = "shopwise_worker_events_processed_total"
    assert metric(body, processed, result="processed") == 3
    assert metric(body, "shopwise_event_processing_delay_seconds_count") == 3
    assert metric(body, "shopwise_event_lag_seconds") == 0  # caught up


def test_metrics_of_several_api_processes_add_up(tmp_path):
    """``shopwise serve --workers N``: a scrape of any process shows all of them."""
    import os
    import subprocess
    import sys

    from backend.config import PROJECT_ROOT

    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = (
        "import sys\n"
        "from backend.observability.metrics import Metrics\n"
        "m = Metrics()\n"
        "m.events.labels('accepted').inc(int(sys.argv[1]))\n"
        "m.event_lag.set(float(sys.argv[1]))\n"
    )
    for n in ("2", "3"):  # two worker processes, one after the other
        subprocess.run([sys.executable, "-c", count, n], env=env, cwd=PROJECT_ROOT, check=True)
    scrape = "from backend.observability.metrics import Metrics; print(Metrics().render().decode())"
    body = subprocess.run(
        [sys.executable, "-c", scrape], env=env, cwd=PROJECT_ROOT, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert metric(body, "shopwise_events_total", outcome="accepted") == 5
    assert metric(body, "shopwise_event_lag_seconds") == 3  # the most recent reading


def test_server_timing_says_how_long_the_app_took():
    """A client tells the app's time from the time its request waited before the app saw it
    (the storefront bench splits its tail this way)."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from backend.api.middleware import RequestContextMiddleware
    from backend.observability.metrics import Metrics

    async def slow(_request):
        await asyncio.sleep(0.05)
        return PlainTextResponse("ok")

    app = RequestContextMiddleware(
        Starlette(routes=[Route("/slow", slow)]), metrics=Metrics(), max_body_bytes=1000
    )
    with TestClient(app) as client:
        header = client.get("/slow").headers["server-timing"]
    name, _, duration = header.partition(";dur=")
    assert name == "app"
    assert 50 <= float(duration) < 5000
