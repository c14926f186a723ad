"""``python -m backend.jobs.worker_child STATUS_FD``: the embedded event worker's child
process, started and supervised by the API (``backend.jobs.worker_process``)."""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from backend.jobs.worker_process import SETTINGS_ENV, AnsweredSince, OutboxWorker


def main() -> None:
    """The child's entry point: the API's settings, its components, the outbox loop."""
    from backend.adapters import default_adapters
    from backend.cli.worker import WORKER_NICENESS, lower_priority, settle
    from backend.config import Settings
    from backend.infra.blas import one_thread_per_request
    from backend.observability.logging import configure_logging
    from backend.wiring import build_components

    status_fd = int(sys.argv[1])
    raw = os.environ.get(SETTINGS_ENV)
    config = Settings(**json.loads(raw)) if raw else Settings()
    configure_logging(config.log_level, json_lines=config.log_json)
    # Requests first, as `shopwise worker` beside the API: on a machine whose cores are all
    # busy, the child's precomputes otherwise took CPU from the requests (closed loop).
    lower_priority(int(os.environ.get("WORKER_NICENESS", WORKER_NICENESS)))
    one_thread_per_request()
    adapters = default_adapters(config, serving=False)
    answered = AnsweredSince(adapters.db)
    components = build_components(config, adapters, serving=False, worker_child=answered)
    status = os.fdopen(status_fd, "w", buffering=1)

    def report(fields: dict[str, Any]) -> None:
        try:
            status.write(json.dumps(fields) + "\n")
        except OSError:  # the API is gone; the wake pipe's end of file stops the loop
            pass

    worker = OutboxWorker(
        db=components.db,
        processor=components.processor,
        wake_fd=sys.stdin.fileno(),
        report=report,
        answered=answered,
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: worker.stop.set())
    settle(components)
    report({"processed": 0, "failed": 0, "last_error": "", "precompute": "starting"})
    try:
        worker.run()
    finally:
        components.training.close()
        components.processor.wait_for_retrain(timeout=10)
        components.db.dispose()


if __name__ == "__main__":
    main()
