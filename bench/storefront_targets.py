"""Two targets the storefront mix does not show: batch ingestion and the uncached recommendation.

- **Events through ``POST /events/batch`` into PostgreSQL** (server mode: ``serve --workers 2``,
  Redis, ``shopwise worker``): ``--clients`` storefront clients each send batches of
  ``--batch-size`` events with unique ids for ``--duration`` seconds (a batch shed with 503
  or throttled with 429 sent again after its ``Retry-After``); events/s accepted, and
  stored == sent counted in the database afterwards.
- **Uncached ``GET /recommend`` over HTTP against the engine alone** at ``--products``
  products (embedded server, nothing else running): the same users, each asked once (so
  never from the cache), one request at a time; the engine-only time is the default strategy
  ranking over the same snapshot in this process, the user's history passed in (as
  ``bench.engine_bench`` measures it), and the in-process service call without HTTP.
  ``--baseline <tree>`` also serves an earlier commit's checkout on the same shop, and asks
  each user of both servers in turn: a change's HTTP time against its baseline's, one run.

Run: ``python -m bench.storefront_targets`` (``--only batch`` or ``--only uncached``). Writes
the ``storefront-targets`` section of ``bench/REPORT.md``. Loopback only, bounded in time,
scratch databases and key prefixes removed after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.harness import (
    ACTIONS,
    REDIS_URL,
    app_env,
    cpu_seconds,
    free_port,
    pct,
    postgres_database,
    process,
    product_ids,
    seed,
    serve_cmd,
    stored_bench_events,
    wait_ready,
)
from bench.report import write_section
from bench.storefront_load import Code

HERE = Path(__file__).parent
BASELINE = "HTTP [baseline]"
RESENDS = 3  # times a shed or throttled batch is sent again before it counts as an error


# --- batch ingestion -------------------------------------------------------------------------


async def send_batches(
    base: str, users: list[str], products: list[str], prefix: str, args: argparse.Namespace
) -> dict[str, Any]:
    rng = random.Random(args.seed)
    sent = accepted = errors = 0
    refused: Counter[int] = Counter()  # 503 / 429 answers, each batch re-sent after them
    failures: Counter[str] = Counter()  # what each error was: a status code or an exception
    latencies: list[float] = []
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=args.clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        stop_at = started + args.duration

        async def one() -> None:
            nonlocal sent, accepted, errors
            while time.perf_counter() < stop_at:
                events = [
                    {"user_id": rng.choice(users), "action": rng.choice(ACTIONS),
                     "product_id": rng.choice(products), "event_id": f"{prefix}-{next(counter)}"}
                    for _ in range(args.batch_size)
                ]  # fmt: skip
                sent += len(events)
                # As a storefront does: a batch the API shed (503) or throttled (429) is sent
                # again, the same event ids, after its Retry-After; the ids make it count once.
                for _ in range(RESENDS + 1):
                    t0 = time.perf_counter()
                    try:
                        r = await client.post("/events/batch", json={"events": events})
                    except httpx.HTTPError as exc:
                        errors += 1
                        failures[type(exc).__name__] += 1
                        break
                    latencies.append((time.perf_counter() - t0) * 1000)
                    if r.status_code in (429, 503):
                        refused[r.status_code] += 1
                        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                        continue
                    if r.status_code == 200:
                        accepted += r.json()["accepted"]
                    else:
                        errors += 1
                        failures[f"HTTP {r.status_code}"] += 1
                    break
                else:
                    errors += 1  # still refused after every re-send: lost to this client
                    failures["refused after every re-send"] += 1

        await asyncio.gather(*(one() for _ in range(args.clients)))
        seconds = time.perf_counter() - started
    return {"sent": sent, "accepted": accepted, "errors": errors, "seconds": seconds,
            "latencies": latencies, "refused": dict(refused),
            "failures": dict(failures)}  # fmt: skip


def batch_ingestion(args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    run = f"bt{uuid.uuid4().hex[:8]}"
    with postgres_database() as pg_url:
        users = seed(pg_url, args.batch_products, args.users, random.Random(args.seed))
        products = product_ids(pg_url)
        prefix = f"{run}:"
        env = app_env(pg_url, REDIS_URL, prefix, tmp, lift_rate_limit=True)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        worker = [sys.executable, "-m", "backend.cli", "worker"]
        load = os.getloadavg()[0]
        with process(serve_cmd(port, 2), env, f"{base}/health"), process(worker, env, None):
            wait_ready(base)
            out = asyncio.run(send_batches(base, users, products, run, args))
        out["stored"] = stored_bench_events(pg_url, run)
        out["load"] = (load, os.getloadavg()[0])
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    return out


# --- the uncached recommendation ---------------------------------------------------------


def engine_times(url: str, tmp: str, users: list[str], top_n: int) -> dict[str, list[float]]:
    """In this process, the app's own components on the same database: the default strategy
    alone (history passed in) and the service call without HTTP (each user once: uncached)."""
    os.environ.update(app_env(url, None, "", tmp, lift_rate_limit=True))
    from sqlmodel import Session

    from backend.config import Settings
    from backend.db import crud
    from backend.db.models import as_utc
    from backend.infra.blas import one_thread_per_request
    from backend.recommender.profile import InteractionRecord
    from backend.wiring import build_components, warmup_steps

    # As in the server: with OpenBLAS's second thread spinning beside it, the engine's wall
    # time was twice its CPU time, which flattered the HTTP / engine ratio.
    one_thread_per_request()
    components = build_components(Settings())
    for step in warmup_steps(components).values():
        step()
    # A new shop trains a first version inline, then the full one (the next-item model too)
    # in a background thread: at 10,000 products that takes minutes. Timed beside it, the
    # engine and the service shared the 2 cores with an EASE inversion, which also went on
    # through the HTTP phase (a daemon thread of this process), and the server then served
    # the first version while the engine had ranked with it too, by chance of timing. Wait
    # for it: every phase measures the same newest models, with nothing training beside it.
    while components.training.training:  # it puts the version it saved in use when done
        time.sleep(0.5)
    svc = components.recommender
    snapshot = svc.snapshots.get()
    strategy = svc.strategies[svc.default_strategy]
    times: dict[str, list[float]] = {"engine": [], "engine cpu": [], "service": []}
    for user_id in users:
        with Session(components.db) as session:
            user = crud.get_user(session=session, user_id=uuid.UUID(user_id))
            history = crud.recent_interactions(session=session, user_id=uuid.UUID(user_id))
        assert user is not None
        records = [InteractionRecord(action=i.action, created_at=as_utc(i.created_at),
                                     product_id=i.product_id, query=i.query)
                   for i in history]  # fmt: skip
        request = svc.build_request(user, records, top_n=top_n, now=datetime.now(UTC))
        t0, c0 = time.perf_counter(), time.thread_time()
        strategy.recommend(snapshot, request)
        times["engine"].append((time.perf_counter() - t0) * 1000)
        times["engine cpu"].append((time.thread_time() - c0) * 1000)
    for user_id in users:
        t0 = time.perf_counter()
        svc.recommend_json(uuid.UUID(user_id), top_n=top_n)
        times["service"].append((time.perf_counter() - t0) * 1000)
    components.training.close()  # a training thread alive at exit aborts the interpreter
    components.db.dispose()
    return times


def uncached_recommend(args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    url = f"sqlite:///{Path(tmp) / 'uncached.db'}"
    users = seed(url, args.products, args.users, random.Random(args.seed))
    asked = users[: args.requests]
    times = engine_times(url, tmp, asked, args.top_n)
    # With --baseline, a server of each tree on the same shop and models, both up at once:
    # every user is asked of both (each server's cache is its own), the first alternating,
    # so the two are timed under the same load, request by request.
    codes = {"HTTP": Code()}
    if args.baseline is not None:
        codes[BASELINE] = Code(args.baseline.resolve())
    env = app_env(url, None, "", tmp, lift_rate_limit=True)
    load = os.getloadavg()[0]
    params = {"top_n": args.top_n}
    with ExitStack() as stack:
        clients: dict[str, httpx.Client] = {}
        pids: dict[str, int] = {}
        for label, code in codes.items():
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            cmd = code.cmd(serve_cmd(port, 1))
            pids[label] = stack.enter_context(process(cmd, code.env(env), f"{base}/health")).pid
            wait_ready(base)
            clients[label] = stack.enter_context(httpx.Client(base_url=base, timeout=30))
            clients[label].get(f"/recommend/{users[-1]}", params=params).raise_for_status()
        for label in clients:
            times[label] = []
        order = list(clients)
        cpu = {label: cpu_seconds(pid) for label, pid in pids.items()}
        for user_id in asked:
            for label in order:
                t0 = time.perf_counter()
                clients[label].get(f"/recommend/{user_id}", params=params).raise_for_status()
                times[label].append((time.perf_counter() - t0) * 1000)
            order.reverse()
        # Per request, all the server's threads: steadier than wall time on a shared machine.
        cpu = {k: (cpu_seconds(pids[k]) - v) * 1000 / len(asked) for k, v in cpu.items()}
    return {"times": times, "load": (load, os.getloadavg()[0]), "server_cpu": cpu}


# --- report ------------------------------------------------------------------------------


def render(args: argparse.Namespace, batch: dict[str, Any] | None,
           uncached: dict[str, Any] | None) -> str:  # fmt: skip
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python -m bench.storefront_targets " + " ".join(sys.argv[1:])
    lines = [f"Command: `{command.strip()}` ({when}, {os.cpu_count()} cores shared with "
             "other work on this machine; the client runs on them too)."]  # fmt: skip
    if batch is not None:
        rate = batch["accepted"] / batch["seconds"]
        ok = batch["stored"] == batch["accepted"] == batch["sent"] and not batch["errors"]
        lines += [
            "",
            f"**Events through `POST /events/batch` into PostgreSQL** (server mode: `serve "
            f"--workers 2`, Redis, one `shopwise worker`; {args.batch_products:,} products, "
            f"{args.users:,} users; {args.clients} clients × batches of {args.batch_size} "
            f"unique events for {args.duration:.0f} s; load average {batch['load'][0]:.1f} → "
            f"{batch['load'][1]:.1f}):",
            "",
            "| events/s accepted | sent | accepted | stored | errors | shed, sent again "
            "| batch p50 / p99 ms |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| **{rate:,.0f}** | {batch['sent']:,} | {batch['accepted']:,} | "
            f"{batch['stored']:,} | {batch['errors']} | "
            f"{sum(batch['refused'].values())} {json.dumps(batch['refused'])} | "
            f"{statistics.median(batch['latencies']):.0f} / {pct(batch['latencies'], 99):.0f} |",
            "",
            "A batch the API sheds (503) or throttles (429) is sent again, the same event ids, "
            f"after its `Retry-After`, at most {RESENDS} times, as a storefront would; an error "
            "is any other answer, or a batch still refused after that"
            + (f" (here: {json.dumps(batch['failures'])})." if batch["failures"] else "."),
            "",
            f"Target ≥ 1,000 events/s, none lost: **{'met' if rate >= 1000 and ok else 'not met'}**"
            f" ({rate:,.0f} events/s; stored {'==' if ok else '≠'} sent).",
        ]
    if uncached is not None:
        t = uncached["times"]
        med = {k: statistics.median(v) for k, v in t.items()}
        ratio = med["HTTP"] / med["engine"]
        lines += [
            "",
            f"**Uncached `GET /recommend` against the engine alone** ({args.products:,} "
            f"products, {args.users:,} users; {args.requests} users, each asked once, one at "
            f"a time; default strategy, top {args.top_n}; load average "
            f"{uncached['load'][0]:.1f} → {uncached['load'][1]:.1f}):",
            "",
            "| measured | median ms | p90 ms |",
            "| --- | ---: | ---: |",
        ]
        labels = {
            "engine": "engine only (strategy over the snapshot, history passed in), wall",
            "engine cpu": "engine only, CPU time of the thread",
            "service": "service call in process (DB reads, ranking, explanation, JSON)",
            "HTTP": "over HTTP (client, uvicorn, middleware, service)",
            BASELINE: f"over HTTP, `--baseline` tree {args.baseline}, same users interleaved",
        }
        lines += [f"| {labels[k]} | {med[k]:.2f} | {pct(v, 90):.2f} |" for k, v in t.items()]
        lines += [
            "",
            f"HTTP / engine-only (medians): **{ratio:.1f}×**; target ≤ 3×: "
            f"**{'met' if ratio <= 3 else 'not met'}**.",
        ]
        cpu = uncached.get("server_cpu", {})
        if "HTTP" in cpu:
            lines += ["", f"Server CPU per request (all its threads): {cpu['HTTP']:.2f} ms."]
        if BASELINE in med:
            lines += [
                "",
                f"The baseline over HTTP, same run: {med[BASELINE] / med['engine']:.1f}× the "
                f"engine; this tree's HTTP median is {med['HTTP'] - med[BASELINE]:+.2f} ms "
                f"from the baseline's, its server CPU per request {cpu[BASELINE]:.2f} → "
                f"{cpu['HTTP']:.2f} ms.",
            ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["batch", "uncached"], default=None)
    parser.add_argument("--duration", type=float, default=20.0, help="batch phase, seconds")
    parser.add_argument("--clients", type=int, default=4, help="batch senders")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batch-products", type=int, default=1000)
    parser.add_argument("--products", type=int, default=10_000, help="uncached recommend")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200, help="uncached recommend users")
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline", type=Path, help="uncached: also serve this tree (an "
                        "earlier commit's checkout), both timed over HTTP in turn; both "
                        "serve one shop, so it must have the same migrations")  # fmt: skip
    parser.add_argument("--report", type=Path, default=HERE / "REPORT.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        batch = batch_ingestion(args, tmp) if args.only in (None, "batch") else None
        if batch is not None:
            print(render(args, batch, None), flush=True)
        uncached = uncached_recommend(args, tmp) if args.only in (None, "uncached") else None
    text = render(args, batch, uncached)
    print(text)
    write_section(args.report, "storefront-targets", "Storefront targets: batch ingestion and "
                  "the uncached recommendation", text)  # fmt: skip


if __name__ == "__main__":
    main()
