"""``shopwise worker``: the event stream's consumer, a process of its own beside the API."""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backend.cli.common import configure_logging, error, settings

if TYPE_CHECKING:
    from backend.wiring import Components

log = logging.getLogger(__name__)

# Beside the API on one machine, a request should get a core before the worker's precomputes
# and explanation jobs, which are asynchronous anyway (server mode's storefront bench: the
# worker's precomputes took a core from `serve --workers 2` on 2 cores). On a host of its own
# the priority changes nothing.
WORKER_NICENESS = 10


def lower_priority(niceness: int) -> int:
    """Lower this process's CPU priority by ``niceness``; returns the resulting nice value."""
    return os.nice(niceness) if niceness else os.nice(0)


def settle(components: Components) -> None:
    """Load what the worker keeps for its life before the first event, then freeze it out
    of the cyclic garbage collector.

    Unfrozen, every full collection walked the snapshot, the models and the imported
    libraries: in the storefront bench (server mode) the worker's full collections took
    24 → 243 ms of CPU each, one every few seconds, growing as it imported the clustering
    library (its first segment recompute, 1.5 s of CPU for the import) and torch (its
    training). That CPU came out of the cores the API serves requests on. The collector is
    off while these load: each import triggered full collections of the growing heap, 32 →
    290 ms of CPU each, 1.3 s in all, for objects that live as long as the process."""
    gc.disable()
    try:
        components.snapshots.get()  # every precompute ranks against it
        if components.settings.segment_recompute_threshold > 0:
            from backend.recommender.segments import load_clustering

            load_clustering()  # the worker recomputes the segments
        if components.training.next_item:
            import backend.recommender.sequential  # noqa: F401  (torch: the worker trains it)
        gc.collect()
        gc.freeze()
    finally:
        gc.enable()


def worker(
    name: Annotated[
        str | None, typer.Option(help="Consumer name (default: host-pid); reuse it to resume")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Messages per read")] = 100,
    burst: Annotated[
        bool, typer.Option(help="Exit once nothing is left pending (cron jobs, tests)")
    ] = False,
    heartbeat_file: Annotated[
        Path | None, typer.Option(help="File touched after every step (for healthchecks)")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve this worker's Prometheus metrics on this port"),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address for --metrics-port (0.0.0.0 inside a container)")
    ] = "127.0.0.1",
    niceness: Annotated[
        int,
        typer.Option(
            min=0,
            max=19,
            envvar="WORKER_NICENESS",
            help="Run at this much lower CPU priority than the API (0: the same)",
        ),
    ] = WORKER_NICENESS,
) -> None:
    """Consume the event stream (precomputed recommendations, co-purchase stats, retrains)
    and, with an LLM configured, the explanation queue."""
    from backend.infra.blas import one_thread_per_request
    from backend.infra.outbox import OutboxSweeper
    from backend.infra.stream import RedisEventStream
    from backend.jobs.worker import StreamWorker
    from backend.wiring import build_components

    config = settings()
    configure_logging(config)
    lower_priority(niceness)
    one_thread_per_request()  # one shopper's products at a time, beside the API on the same cores
    if not config.redis_url:
        raise error(
            "shopwise worker needs REDIS_URL; without Redis the API does this work in-process."
        )
    components = build_components(config, serving=False)
    if not burst:
        settle(components)
    stream = components.stream
    assert isinstance(stream, RedisEventStream)  # REDIS_URL is set: the stream is Redis's
    if metrics_port is not None:  # progress, processing delay and lag of this worker
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host, registry=components.metrics.registry)
    consumer = name or f"{socket.gethostname()}-{os.getpid()}"
    runner = StreamWorker(
        stream=stream,
        processor=components.processor,
        consumer=consumer,
        batch_size=batch_size,
        claim_idle_ms=int(config.worker_claim_idle_seconds * 1000),
        refresh_snapshot=components.snapshots.refresh_if_stale,
        refresh_seconds=config.snapshot_refresh_seconds or 5.0,
        heartbeat=heartbeat_file,
        sweeper=OutboxSweeper(db=components.db, stream=stream),
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("worker %s reading %s", consumer, stream.stream)
    # With an LLM configured, the explanation jobs the API queued on Redis are written here,
    # LLM_CONCURRENCY at a time across every process (the model slots are counted on Redis).
    explainers = components.explanations.workers
    if explainers is not None and not burst:
        explainers.start(consumer)
    if not burst:
        # The API processes fit no next-item model in server mode: this worker does, in a
        # background thread, when the newest version lacks one.
        components.training.complete_in_background()
    try:
        runner.run(stop, burst=burst)
    finally:
        if explainers is not None:
            explainers.stop()
        components.training.close()  # stops a training between batches (a clean exit)
        components.processor.wait_for_retrain(timeout=10)
        components.db.dispose()
    typer.echo(f"worker {consumer}: {runner.handled} message(s) handled")
