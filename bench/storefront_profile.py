"""Where the time goes: a server under py-spy while the storefront mix runs, summarised per
request path (``python -m bench.storefront_load --profile``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack
from pathlib import Path

from bench.harness import (
    app_env,
    free_port,
    postgres_database,
    process,
    product_ids,
    seed,
    serve_cmd,
    wait_ready,
)
from bench.storefront_traffic import Phase, Traffic, closed_loop


def profile(args: argparse.Namespace) -> str:
    """One ``shopwise serve`` process under py-spy while the storefront mix runs (limit
    lifted), on the embedded default or (``--profile-db postgres``) on a scratch PostgreSQL
    database (in-process cache and worker: the database is what differs)."""
    run = f"prof{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        if args.profile_db == "postgres":
            url = stack.enter_context(postgres_database())
        else:
            url = f"sqlite:///{Path(tmp) / 'shop.db'}"
        users = seed(url, args.products, args.users, random.Random(args.seed))
        products = product_ids(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        raw = args.profile_raw or Path(tmp) / "profile.txt"
        env = app_env(url, None, "", tmp, lift_rate_limit=True)
        loads = [os.getloadavg()[0]]
        with process(serve_cmd(port, 1), env, f"{base}/health") as server:
            wait_ready(base)
            spy = subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw",
                 "-r", "250", "-d", str(int(args.duration)), "-p", str(server.pid),
                 "-o", str(raw)],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1)  # attached before the load starts
            traffic = Traffic(run, users[: args.shoppers], products, args.event_share, 0.0,
                              random.Random(args.seed))  # fmt: skip
            phase = Phase("profile", f"closed, {args.clients} clients")
            asyncio.run(closed_loop(base, phase, traffic, args.clients, args.duration - 2))
            spy.wait(timeout=120)
        loads.append(os.getloadavg()[0])
        return f"Database: {args.profile_db}. " + summarise_profile(raw.read_text(), phase, loads)


PATHS = (  # (label, a file whose frames mark the path), checked in this order
    ("event path (TrackingService, thread pool)", "backend/services/track.py"),
    ("recommend path (RecommendationService, thread pool)", "backend/services/recommend.py"),
    ("in-process event worker (thread)", "backend/jobs/worker.py"),
    ("outbox sweeper (thread)", "backend/infra/outbox.py"),
    ("impression log writer (thread)", "backend/jobs/impressions.py"),
    ("snapshot refresh (thread)", "backend/main.py:"),
    ("HTTP: uvicorn, middleware, FastAPI parsing/serialising (event loop)", "uvicorn/"),
)


def summarise_profile(text: str, phase: Phase, loads: list[float]) -> str:
    """Samples per request path, then per path the heaviest frames: inclusive (our code)
    and self (where the CPU actually is, any library)."""
    stacks: list[tuple[list[str], int]] = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    idle_leaves = ("Condition.wait (", "Queue.get (", "Event.wait (", "select (", "sleep (")
    idle = sum(n for st, n in stacks if st[-1].startswith(idle_leaves))
    stacks = [(st, n) for st, n in stacks if not st[-1].startswith(idle_leaves)]
    total = sum(n for _, n in stacks) or 1

    def short(frame: str) -> str:
        name, _, where = frame.partition(" (")
        file = where.split(":")[0]
        for root in ("site-packages/", "lib/python3.11/"):
            file = file.split(root)[-1]
        return f"{name} ({file})"

    by_path: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    leaf: dict[str, Counter[str]] = defaultdict(Counter)
    for frames, n in stacks:
        joined = ";".join(frames)
        where = next((label for label, mark in PATHS if mark in joined), "other")
        by_path[where] += n
        leaf[where][short(frames[-1])] += n
        for name in {short(f) for f in frames if "backend/" in f and "backend/cli" not in f}:
            inclusive[where][name] += n
    lines = [
        f"{total:,} samples (py-spy, 250 Hz; {idle:,} more of threads parked in a wait, "
        f"e.g. idle thread-pool workers, left out) over {phase.seconds:.0f} s "
        f"of the storefront mix ({phase.loop}, limit lifted, {phase.ok / phase.seconds:.0f} "
        f"req/s served; 1-minute load average {loads[0]:.1f} at start, {loads[-1]:.1f} at the "
        "end).",
        "",
        "| where | share of samples |",
        "| --- | ---: |",
    ]
    lines += [f"| {w} | {n / total:.1%} |" for w, n in by_path.most_common()]
    for where, _ in by_path.most_common(5):
        lines += ["", f"*{where}*: heaviest frames, % of all samples", ""]
        lines.append(
            "- inclusive (our code): "
            + "; ".join(f"`{name}` {n / total:.1%}" for name, n in inclusive[where].most_common(8))
        )
        lines.append(
            "- self (where the CPU is): "
            + "; ".join(f"`{name}` {n / total:.1%}" for name, n in leaf[where].most_common(8))
        )
    return "\n".join(lines)
