"""Load benchmark on loopback: storefront clients against the API with Redis and PostgreSQL.

What it measures, all in one run:

1. **Mixed load** for ``--duration`` seconds: ``--clients`` concurrent storefront clients post
   events (single and batches of 10, each with an ``event_id``) and fetch recommendations for a
   hot set of users. Reports req/s, p50/p99 per request kind, errors, and checks that the
   events stored in PostgreSQL equal the events sent.
2. **Event → recommendation latency**: post a view of the first recommended product, then
   fetch the user's recommendations until that product is gone (a viewed product is never
   recommended again). Time from the event's 2xx to the first answer reflecting it. Measured
   with Redis + PostgreSQL and in the embedded mode (SQLite, in-process cache and worker).
3. **Cached recommend vs a bare endpoint**: the same cached ``/recommend`` JSON served by a
   bare FastAPI route (one ``Response`` with the bytes), same uvicorn settings, alternating
   rounds so drift hits both.

Bounded: fixed durations and sample counts, loopback only, its own PostgreSQL database and
Redis key prefix (both removed afterwards). A shared 2-core machine: compare ratios.

Run: ``python -m bench.load_bench`` (``--duration 10`` for a quick look). Writes the ``load``
section of ``bench/REPORT.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis
from fastapi import FastAPI, Response

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
    stored_bench_events,
    uvicorn,
)
from bench.report import write_section

LOAD_LABELS = ("at start", "before the comparison", "at the end")


def bare_app() -> FastAPI:
    """The baseline: a bare FastAPI route answering the same JSON bytes."""
    body = Path(os.environ["BENCH_BARE_JSON"]).read_bytes()
    app = FastAPI()

    @app.get("/recommend/{user_id}")
    def recommend(user_id: str) -> Response:
        return Response(content=body, media_type="application/json")

    return app


# --- measurement -------------------------------------------------------------------------


@dataclass
class Compare:
    """Requests served and server CPU used: the API side, and the bare side when compared."""

    done: int = 0
    cpu: float = 0.0
    bare_done: int = 0
    bare_cpu: float = 0.0

    def add(self, done: int, cpu: float) -> None:
        self.done, self.cpu = self.done + done, self.cpu + cpu

    def against(self, bare: Compare) -> Compare:
        return Compare(self.done, self.cpu, bare.done, bare.cpu)

    @property
    def ratio(self) -> float:
        return self.done / self.bare_done if self.bare_done else float("nan")

    @property
    def cpu_us(self) -> tuple[float, float]:
        """Server CPU per request, microseconds: (API, bare)."""
        per = (
            self.cpu / self.done if self.done else 0.0,
            self.bare_cpu / self.bare_done if self.bare_done else 0.0,
        )
        return per[0] * 1e6, per[1] * 1e6


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    events_sent: int = 0
    events_accepted: int = 0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(self.errors.values())


async def storefront(
    client: httpx.AsyncClient,
    stats: Stats,
    stop_at: float,
    users: list[str],
    products: list[str],
    run: str,
    rng: random.Random,
) -> None:
    seq = 0
    while time.perf_counter() < stop_at:
        roll = rng.random()
        user = rng.choice(users)
        started = time.perf_counter()
        try:
            if roll < 0.45:
                kind = "GET /recommend"
                r = await client.get(f"/recommend/{user}")
            elif roll < 0.9:
                kind = "POST /events"
                seq += 1
                stats.events_sent += 1
                r = await client.post("/events", json=_event(user, products, run, seq, rng))
                stats.events_accepted += r.status_code == 201
            else:
                kind = "POST /events/batch (10)"
                batch = []
                for _ in range(10):
                    seq += 1
                    batch.append(_event(rng.choice(users), products, run, seq, rng))
                stats.events_sent += 10
                r = await client.post("/events/batch", json={"events": batch})
                if r.status_code == 200:
                    stats.events_accepted += r.json()["accepted"]
            elapsed = (time.perf_counter() - started) * 1000
            if r.status_code >= 300:
                stats.errors[f"{kind} {r.status_code}"] += 1
            else:
                stats.latencies[kind].append(elapsed)
        except httpx.HTTPError as exc:
            stats.errors[type(exc).__name__] += 1


def _event(
    user: str, products: list[str], run: str, seq: int, rng: random.Random
) -> dict[str, str]:
    return {
        "user_id": user,
        "action": rng.choice(ACTIONS),
        "product_id": rng.choice(products),
        "event_id": f"{run}-{id(rng)}-{seq}",
    }


async def mixed_load(
    base: str, clients: int, seconds: float, users: list[str], products: list[str], run: str
) -> tuple[Stats, float]:
    stats = Stats()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(
            *(
                storefront(client, stats, stop_at, users, products, run, random.Random(i))
                for i in range(clients)
            )
        )
        elapsed = time.perf_counter() - started
    return stats, elapsed


def reflection_latency(base: str, users: list[str], samples: int) -> tuple[list[float], int]:
    """ms from an accepted view to the first recommendation without that product."""
    latencies: list[float] = []
    stale_reads = 0
    rng = random.Random(99)
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(samples):
            user = rng.choice(users)
            listed = client.get(f"/recommend/{user}").json()["recommended_products"]
            if not listed:
                continue
            target = listed[0]["id"]
            event = {"user_id": user, "action": "view", "product_id": target}
            event["event_id"] = f"reflect-{uuid.uuid4().hex}-{i}"
            assert client.post("/events", json=event).status_code == 201
            accepted = time.perf_counter()
            for _ in range(200):
                body = client.get(f"/recommend/{user}").json()
                if target not in [p["id"] for p in body["recommended_products"]]:
                    break
                stale_reads += 1
                time.sleep(0.001)
            latencies.append((time.perf_counter() - accepted) * 1000)
    return latencies, stale_reads


async def hammer(base: str, path: str, clients: int, seconds: float) -> tuple[int, int]:
    done = errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        stop_at = time.perf_counter() + seconds

        async def one() -> None:
            nonlocal done, errors
            while time.perf_counter() < stop_at:
                try:
                    r = await client.get(path)
                    if r.status_code == 200:
                        done += 1
                    else:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1

        await asyncio.gather(*(one() for _ in range(clients)))
    return done, errors


# --- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="mixed load, seconds")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--reflect-samples", type=int, default=200)
    parser.add_argument("--compare-seconds", type=float, default=12.0, help="per side, total")
    parser.add_argument(
        "--compare-repeats", type=int, default=3, help="cached-vs-bare comparisons (median)"
    )
    parser.add_argument("--report", type=Path, default=Path(__file__).with_name("REPORT.md"))
    args = parser.parse_args()
    command = "python -m bench.load_bench " + " ".join(sys.argv[1:])
    rng = random.Random(7)
    run = f"bench{uuid.uuid4().hex[:8]}"
    loads = [os.getloadavg()[0]]
    prefix = f"{run}:"

    with postgres_database() as pg_url, tempfile.TemporaryDirectory() as tmp:
        users = seed(pg_url, args.products, args.users, rng)
        products = product_ids(pg_url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = app_env(pg_url, REDIS_URL, prefix, tmp)
        worker_cmd = [sys.executable, "-m", "backend.cli", "worker"]
        with (
            process(
                uvicorn("backend.main:create_app", port, args.api_workers), env, f"{base}/health"
            ) as api_proc,
            process(worker_cmd, env, None),
        ):
            print(f"mixed load: {args.clients} clients for {args.duration:.0f} s …", flush=True)
            hot_users = users[: max(20, len(users) // 5)]
            stats, elapsed = asyncio.run(
                mixed_load(base, args.clients, args.duration, hot_users, products, run)
            )
            stored = stored_bench_events(pg_url, run)
            print("event → recommendation latency (Redis + PostgreSQL) …", flush=True)
            reflect_pg, stale_pg = reflection_latency(base, users, args.reflect_samples)

            print("cached recommend vs bare endpoint …", flush=True)
            loads.append(os.getloadavg()[0])
            user = users[-1]
            body = httpx.get(f"{base}/recommend/{user}").content
            assert httpx.get(f"{base}/recommend/{user}").json()["cached"] is True
            bare_json = Path(tmp) / "bare.json"
            bare_json.write_bytes(body)
            bare_port = free_port()
            bare_base = f"http://127.0.0.1:{bare_port}"
            bare_env = env | {"BENCH_BARE_JSON": str(bare_json)}
            compares: list[Compare] = []
            compare_errors = 0
            with process(
                uvicorn("bench.load_bench:bare_app", bare_port, args.api_workers),
                bare_env,
                f"{bare_base}/recommend/x",
            ) as bare_proc:
                rounds, per = 4, args.compare_seconds / 4
                for _ in range(max(args.compare_repeats, 1)):
                    sides = {"api": Compare(), "bare": Compare()}
                    for _ in range(rounds):
                        for side, url, proc in (
                            ("api", base, api_proc),
                            ("bare", bare_base, bare_proc),
                        ):
                            cpu = cpu_seconds(proc.pid)
                            done, err = asyncio.run(
                                hammer(url, f"/recommend/{user}", args.clients, per)
                            )
                            sides[side].add(done, cpu_seconds(proc.pid) - cpu)
                            compare_errors += err
                    compares.append(sides["api"].against(sides["bare"]))

        redis_client = redis.Redis.from_url(REDIS_URL)
        stream_len = redis_client.xlen(f"{prefix}shopwise:events")
        keys = list(redis_client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            redis_client.delete(*keys)
        redis_client.close()

    print("event → recommendation latency (embedded: SQLite, in-process) …", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        users_embedded = seed(sqlite_url, args.products, args.users, random.Random(7))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with process(
            uvicorn("backend.main:create_app", port, 1),
            app_env(sqlite_url, None, "", tmp),
            f"{base}/health",
        ):
            reflect_embedded, stale_embedded = reflection_latency(
                base, users_embedded, args.reflect_samples
            )

    loads.append(os.getloadavg()[0])
    text = render(
        args, command, stats, elapsed, stored, stream_len, reflect_pg, stale_pg,
        reflect_embedded, stale_embedded, compares, compare_errors, loads,
    )  # fmt: skip
    print(text)
    write_section(args.report, "load", "Load: events and recommendations over HTTP", text)


def render(
    args: argparse.Namespace,
    command: str,
    stats: Stats,
    elapsed: float,
    stored: int,
    stream_len: int,
    reflect_pg: list[float],
    stale_pg: int,
    reflect_embedded: list[float],
    stale_embedded: int,
    compares: list[Compare],
    compare_errors: int,
    loads: list[float],
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Command: `{command.strip()}` ({when}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores shared by server, worker and clients).",
        "",
        f"Setup: uvicorn ({args.api_workers} worker process(es)) on loopback with PostgreSQL and "
        f"Redis (cache + stream) and one `shopwise worker`; {args.products:,} products, "
        f"{args.users:,} users; {args.clients} concurrent storefront clients (httpx, asyncio) "
        f"for {elapsed:.0f} s: 45% `GET /recommend` over a hot set of users, 45% single events, "
        "10% batches of 10 events, every event with a unique `event_id`.",
        "",
        "| request | count | req/s | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    all_latencies: list[float] = []
    for kind, values in sorted(stats.latencies.items()):
        all_latencies += values
        lines.append(
            f"| {kind} | {len(values):,} | {len(values) / elapsed:.0f} | "
            f"{statistics.median(values):.1f} | {pct(values, 99):.1f} |"
        )
    lines.append(
        f"| **all** | {len(all_latencies):,} | {stats.requests / elapsed:.0f} | "
        f"{statistics.median(all_latencies):.1f} | {pct(all_latencies, 99):.1f} |"
    )
    errors = sum(stats.errors.values())
    error_detail = ", ".join(f"{k}: {v}" for k, v in stats.errors.items()) or "none"
    lines += [
        "",
        f"Errors: **{errors}** ({error_detail}). Events sent {stats.events_sent:,}, accepted "
        f"{stats.events_accepted:,}, stored in PostgreSQL **{stored:,}** "
        f"({'equal' if stored == stats.events_sent else 'NOT equal'} to sent); "
        f"{stream_len:,} messages on the Redis stream (events of the load and latency phases).",
        "",
        "Event accepted → a recommendation reflecting it (a viewed product leaves the list), "
        f"{args.reflect_samples} samples, sequential:",
        "",
        "| mode | p50 ms | p99 ms | max ms | stale reads |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, values, stale in (
        ("embedded (SQLite, in-process cache and worker)", reflect_embedded, stale_embedded),
        ("Redis + PostgreSQL", reflect_pg, stale_pg),
    ):
        lines.append(
            f"| {name} | {statistics.median(values):.1f} | {pct(values, 99):.1f} | "
            f"{max(values):.1f} | {stale} |"
        )
    ratios = [c.ratio for c in compares]
    median = statistics.median(ratios)
    api_rate = statistics.median(c.done for c in compares) / args.compare_seconds
    bare_rate = statistics.median(c.bare_done for c in compares) / args.compare_seconds
    each = ", ".join(f"{r:.0%}" for r in ratios)
    api_cpu = statistics.median(c.cpu_us[0] for c in compares)
    bare_cpu = statistics.median(c.cpu_us[1] for c in compares)
    per_side = args.compare_seconds
    lines += [
        "",
        f"Target p99 ≤ 50 ms embedded: **{pct(reflect_embedded, 99):.1f} ms**. The cache is "
        "invalidated in the request that stores the event, so the first read after it is "
        "already fresh (stale reads = answers that still showed the product).",
        "",
        f"Cached `GET /recommend` vs a bare FastAPI route returning the same JSON bytes, "
        f"{args.clients} clients, {per_side:.0f} s per side in alternating rounds, "
        f"{len(compares)} comparison(s): median {api_rate:.0f} vs {bare_rate:.0f} req/s, "
        f"median ratio **{median:.0%}** (each: {each}; target ≥ 70%; {compare_errors} "
        "errors). Both sides share the client's CPU, so the ratio understates the server-side "
        "gap.",
    ]
    if args.api_workers == 1:  # with more, the pid is only uvicorn's supervisor
        lines += [
            "",
            f"Server CPU per request (user + system, all threads of the server process, median of "
            f"the comparisons; less sensitive to the machine's load than req/s): API "
            f"{api_cpu:.0f} µs, bare {bare_cpu:.0f} µs = **{bare_cpu / api_cpu:.0%}** of the API's "
            "cost. The API's figure includes its background threads (impression log writes, "
            "snapshot checks).",
        ]
    lines += [
        "",
        "Machine load (1-minute load average, 2 cores, other work running beside the bench): "
        + ", ".join(
            f"{label} {value:.1f}" for label, value in zip(LOAD_LABELS, loads, strict=False)
        )
        + ".",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
