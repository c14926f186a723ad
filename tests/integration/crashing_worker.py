"""A worker that dies by SIGKILL in the middle of a batch (run as a subprocess by a test).

It is the real ``StreamWorker`` and ``EventProcessor``; the only change is a hook that kills
the process, without any cleanup, once ``KILL_AFTER`` events of the batch are committed.
"""

from __future__ import annotations

import os
import signal
import threading

from backend.config import load_settings
from backend.infra.stream import RedisEventStream
from backend.jobs.events import EventProcessor
from backend.jobs.worker import StreamWorker
from backend.wiring import build_components


def main() -> None:
    settings = load_settings(_env_file=None)
    components = build_components(settings)
    kill_after = int(os.environ["KILL_AFTER"])

    def die(committed: int) -> None:
        if committed >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    processor = EventProcessor(
        db=components.db,
        recommender=components.recommender,
        top_n=settings.default_top_n,
        retrain_threshold=settings.retrain_threshold,
        commit_every=int(os.environ["COMMIT_EVERY"]),
        on_commit=die,
    )
    assert settings.redis_url
    stream = RedisEventStream.from_url(
        settings.redis_url,
        stream=settings.redis_key_prefix + settings.event_stream,
        group=settings.event_group,
    )
    worker = StreamWorker(
        stream=stream,
        processor=processor,
        consumer="doomed",
        batch_size=int(os.environ["BATCH"]),
        block_ms=200,
    )
    worker.run(threading.Event())


if __name__ == "__main__":
    main()
