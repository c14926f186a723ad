"""Bench probe, loaded by every Python process started with ``bench/probe`` on PYTHONPATH
(``bench.storefront_load --tail-dir``): with ``SHOPWISE_GC_PROBE`` set, each garbage
collection of 2 ms or more (and every full one) is appended to ``gc-<pid>.jsonl`` there, with
its wall-clock start, so the bench can lay the pauses beside its slowest seconds."""

from __future__ import annotations

import gc
import json
import os
import time

_DIR = os.environ.get("SHOPWISE_GC_PROBE")

if _DIR:
    _started: list[float] = [0.0, 0.0, 0.0]

    def _probe(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
            _started[1] = time.time()
            _started[2] = time.thread_time()
            return
        ms = (time.perf_counter() - _started[0]) * 1000
        if ms < 2.0 and info.get("generation") != 2:
            return
        cpu = (time.thread_time() - _started[2]) * 1000  # wall ms include waiting for a core
        line = {"t": _started[1], "ms": round(ms, 2), "cpu_ms": round(cpu, 2),
                "gen": info.get("generation"),
                "collected": info.get("collected")}  # fmt: skip
        with open(os.path.join(_DIR, f"gc-{os.getpid()}.jsonl"), "a") as out:
            out.write(json.dumps(line) + "\n")

    gc.callbacks.append(_probe)
