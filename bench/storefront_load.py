"""Storefront load generator: one storefront backend calling the API, closed and open loop.

The mix (``--event-share``, ``--retry-share``): half the requests are events, each with a
unique ``event_id`` except a share that re-sends an earlier event verbatim (a retried
delivery), the other half ``GET /recommend`` for the same shoppers, so most recommendations
follow an event that invalidated the shopper's cached answer.

- **Closed loop**: ``--clients`` concurrent clients, each sending its next request when the
  last one answered (the maximum rate).
- **Open loop**: Poisson arrivals at a target rate (default: half the target's closed-loop
  rate). Latency counts from the *scheduled* send time, so a server (or client) that falls
  behind shows it in the tail instead of hiding it (coordinated omission).

Targets, in one run with the same client: ``shopwise serve`` on the embedded default (SQLite,
in-process cache and worker), server mode (PostgreSQL + Redis + ``shopwise worker``, ``serve
--workers 2``), and a bare FastAPI app with the same route shapes (the ceiling for the ratio).
Each app target runs with the default rate limits (a storefront is one IP: the 429s are
counted and reported as such) and with the limit lifted (``--limits``).

Checks: 0 errors (429s apart), and events stored == distinct events accepted. Warm start:
after the embedded start (catalog indexed), the first ``GET /search`` and ``GET /recommend``
against the hundredth. ``--profile`` instead runs the embedded server under py-spy with the
mix and summarises where the time goes.

Bounded (fixed durations), loopback only, scratch databases and key prefixes removed after.

Run: ``python -m bench.storefront_load`` (``--duration 10`` for a quick look). Writes the
``storefront`` section of ``bench/REPORT.md`` and ``bench/storefront_*.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from fastapi import FastAPI, Response
from pydantic import BaseModel

from bench.harness import (
    ACTIONS,
    REDIS_URL,
    app_env,
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

HERE = Path(__file__).parent
EVENT, RECOMMEND = "POST /events", "GET /recommend"


# --- the traffic -------------------------------------------------------------------------


@dataclass
class Traffic:
    """The storefront's requests: events (some re-sent) and recommendations, same shoppers."""

    prefix: str
    shoppers: list[str]
    products: list[str]
    event_share: float
    retry_share: float
    rng: random.Random
    sent: list[dict[str, str]] = field(default_factory=list)

    def next(self) -> tuple[str, str, dict[str, str] | None]:
        """(kind, path, JSON body or None for a GET)."""
        if self.rng.random() >= self.event_share:
            return RECOMMEND, f"/recommend/{self.rng.choice(self.shoppers)}", None
        if self.sent and self.rng.random() < self.retry_share:
            return EVENT, "/events", self.rng.choice(self.sent)  # a retried delivery
        event = {
            "user_id": self.rng.choice(self.shoppers),
            "action": self.rng.choice(ACTIONS),
            "product_id": self.rng.choice(self.products),
            "event_id": f"{self.prefix}-{len(self.sent)}",
        }
        self.sent.append(event)
        return EVENT, "/events", event


@dataclass
class Phase:
    target: str
    loop: str
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    throttled: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted_ids: set[str] = field(default_factory=set)
    sent_ids: set[str] = field(default_factory=set)
    stored: int | None = None
    rate: float | None = None  # open loop: the target arrival rate

    def record(self, kind: str, event_id: str | None, status: int, ms: float) -> None:
        if event_id is not None:
            self.sent_ids.add(event_id)
        if status == 429:
            self.throttled[kind] += 1
        elif 200 <= status < 300:
            self.latencies[kind].append(ms)
            if event_id is not None:
                self.accepted_ids.add(event_id)
        else:
            self.errors[f"{kind} {status}"] += 1

    @property
    def answered(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(self.throttled.values())

    @property
    def ok(self) -> int:
        return sum(len(v) for v in self.latencies.values())


async def _send(
    client: httpx.AsyncClient, phase: Phase, traffic: Traffic, started: float | None = None
) -> None:
    kind, path, body = traffic.next()
    t0 = time.perf_counter() if started is None else started
    try:
        if body is None:
            r = await client.get(path)
        else:
            r = await client.post("/events", json=body)
        phase.record(kind, body["event_id"] if body else None, r.status_code,
                     (time.perf_counter() - t0) * 1000)  # fmt: skip
    except httpx.HTTPError as exc:
        if body is not None:
            phase.sent_ids.add(body["event_id"])
        phase.errors[f"{kind} {type(exc).__name__}"] += 1


async def closed_loop(base: str, phase: Phase, traffic: Traffic, clients: int, secs: float) -> None:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        stop_at = started + secs

        async def one() -> None:
            while time.perf_counter() < stop_at:
                await _send(client, phase, traffic)

        await asyncio.gather(*(one() for _ in range(clients)))
        phase.seconds = time.perf_counter() - started


async def open_loop(
    base: str, phase: Phase, traffic: Traffic, rate: float, secs: float, rng: random.Random
) -> None:
    """Poisson arrivals at ``rate``/s; each request's latency starts at its scheduled time."""
    phase.rate = rate
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        due = started
        while True:
            due += rng.expovariate(rate)
            if due - started >= secs:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(client, phase, traffic, started=due)))
        _, pending = await asyncio.wait(tasks, timeout=30) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        if pending:
            phase.errors["unfinished after 30 s"] += len(pending)
        phase.seconds = time.perf_counter() - started


# --- the bare baseline -----------------------------------------------------------------------


class BareEvent(BaseModel):
    user_id: uuid.UUID
    action: str
    product_id: uuid.UUID | None = None
    event_id: str | None = None


def bare_app() -> FastAPI:
    """The same route shapes with nothing behind them: events parsed and deduplicated in a
    dict, recommendations answered with a real response's bytes."""
    body = Path(os.environ["BENCH_BARE_JSON"]).read_bytes()
    seen: dict[str, str] = {}
    app = FastAPI()

    @app.post("/events", status_code=201)
    def events(event: BareEvent, response: Response) -> dict[str, Any]:
        key = event.event_id or uuid.uuid4().hex
        if key in seen:
            response.status_code = 200
        interaction = seen.setdefault(key, str(uuid.uuid4()))
        return {"interaction_id": interaction, "duplicate": response.status_code == 200,
                "created_at": datetime.now(UTC).isoformat()}  # fmt: skip

    @app.get("/recommend/{user_id}")
    def recommend(user_id: uuid.UUID) -> Response:
        return Response(content=body, media_type="application/json")

    @app.get("/health/ready")
    def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --- targets -------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    base: str
    database_url: str | None  # None: nothing is stored (the bare app)


def serve_cmd(port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "backend.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers)]  # fmt: skip


def wait_ready(base: str, seconds: float = 180) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        try:
            if httpx.get(f"{base}/health/ready", timeout=5).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{base} not ready after {seconds:.0f} s")


@contextmanager
def embedded(tmp: str, args: argparse.Namespace, lifted: bool) -> Iterator[Target]:
    url = f"sqlite:///{Path(tmp) / 'shop.db'}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = app_env(url, None, "", tmp, lift_rate_limit=lifted)
    with process(serve_cmd(port, 1), env, f"{base}/health"):
        wait_ready(base)
        yield Target(f"embedded, {'limit lifted' if lifted else 'default limits'}", base, url)


@contextmanager
def server_mode(pg_url: str, tmp: str, prefix: str, lifted: bool) -> Iterator[Target]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = app_env(pg_url, REDIS_URL, prefix, tmp, lift_rate_limit=lifted)
    worker = [sys.executable, "-m", "backend.cli", "worker"]
    with process(serve_cmd(port, 2), env, f"{base}/health"), process(worker, env, None):
        wait_ready(base)
        name = f"server mode, {'limit lifted' if lifted else 'default limits'}"
        yield Target(name, base, pg_url)


@contextmanager
def bare(tmp: str, sample: bytes) -> Iterator[Target]:
    path = Path(tmp) / "recommend.json"
    path.write_bytes(sample)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ) | {"BENCH_BARE_JSON": str(path)}
    with process(uvicorn("bench.storefront_load:bare_app", port, 1), env, f"{base}/health/ready"):
        yield Target("bare FastAPI (same routes, no work)", base, None)


def wait_stored(target: Target, prefix: str, expected: int, seconds: float = 60) -> int:
    """Events are written by the worker: wait until all are in (or the count stops moving)."""
    assert target.database_url is not None
    deadline = time.monotonic() + seconds
    stored = last = -1
    while time.monotonic() < deadline:
        stored = stored_bench_events(target.database_url, prefix)
        if stored >= expected:
            return stored
        if stored == last:
            time.sleep(1)
        last = stored
        time.sleep(0.5)
    return stored


def run_target(
    target: Target, args: argparse.Namespace, run: str, users: list[str], products: list[str]
) -> list[Phase]:
    """Closed loop, then open loop at half the closed loop's rate (or ``--rate``)."""
    key = uuid.uuid4().hex[:6]
    shoppers = users[: args.shoppers]
    phases = []
    for loop in ("closed", "open"):
        prefix = f"{run}-{key}-{loop}"
        traffic = Traffic(prefix, shoppers, products, args.event_share, args.retry_share,
                          random.Random(f"{loop}{args.seed}"))  # fmt: skip
        if loop == "closed":
            phase = Phase(target.name, f"closed, {args.clients} clients")
            print(f"  {target.name}: closed loop …", flush=True)
            asyncio.run(closed_loop(target.base, phase, traffic, args.clients, args.duration))
        else:
            rate = args.rate or max(1.0, phases[0].answered / phases[0].seconds / 2)
            phase = Phase(target.name, f"open, {rate:.0f} req/s Poisson")
            print(f"  {target.name}: open loop at {rate:.0f}/s …", flush=True)
            rng = random.Random(args.seed)
            asyncio.run(open_loop(target.base, phase, traffic, rate, args.duration, rng))
        if target.database_url is not None:
            phase.stored = wait_stored(target, prefix, len(phase.accepted_ids))
        phases.append(phase)
    return phases


def warm_start(base: str, users: list[str], started: float, ready_after: float) -> dict[str, Any]:
    """Sequential requests right after readiness: request 1 vs request 100, per endpoint.

    Every request is a first one of its kind (another shopper, another query), so none is
    answered from the response cache."""
    words = ["lamp", "kettle", "shoes", "desk", "garden", "coffee", "jacket", "camera", "toy",
             "bag"]  # fmt: skip
    out: dict[str, Any] = {"ready_s": ready_after, "since_start_s": time.perf_counter() - started}
    times: dict[str, list[float]] = defaultdict(list)
    with httpx.Client(base_url=base, timeout=60) as client:
        for i in range(100):
            for kind, path, params in (
                ("GET /search", "/search", {"q": f"{words[i % 10]} {i}", "top_n": 10}),
                ("GET /recommend", f"/recommend/{users[-(i + 1)]}", {}),
            ):
                t0 = time.perf_counter()
                r = client.get(path, params=params)
                times[kind].append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"warm start: {kind} answered {r.status_code}: {r.text}")
        out["startup"] = client.get("/health/ready").json()["components"].get("startup")
    out["times"] = dict(times)
    return out


# --- profile -------------------------------------------------------------------------------


def profile(args: argparse.Namespace) -> str:
    """The embedded server under py-spy while the storefront mix runs (limit lifted)."""
    run = f"prof{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
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
        return summarise_profile(raw.read_text(), phase, loads)


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
    for stack, n in stacks:
        joined = ";".join(stack)
        where = next((label for label, mark in PATHS if mark in joined), "other")
        by_path[where] += n
        leaf[where][short(stack[-1])] += n
        for name in {short(f) for f in stack if "backend/" in f and "backend/cli" not in f}:
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


# --- plots and report ----------------------------------------------------------------------


def plot(phases: list[Phase], loop: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    qs = [50, 75, 90, 95, 99, 99.9]
    xs = [1 / (1 - q / 100) for q in qs]
    for phase in phases:
        if not phase.loop.startswith(loop):
            continue
        for kind, values in sorted(phase.latencies.items()):
            if len(values) < 20:
                continue
            ax.plot(xs, [pct(values, q) for q in qs], marker="o",
                    label=f"{phase.target}: {kind}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(xs, [f"p{q:g}" for q in qs])
    ax.minorticks_off()
    ax.set_ylabel("latency, ms (log)")
    title = "closed loop (max rate)" if loop == "closed" else "open loop (half the max rate)"
    ax.set_title(f"Storefront mix, {title}: successful requests")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def row(phase: Phase) -> str:
    cells = []
    for kind in (EVENT, RECOMMEND):
        v = phase.latencies.get(kind, [])
        cells.append(f"{statistics.median(v):.1f} / {pct(v, 99):.1f}" if v else "–")
    errors = sum(phase.errors.values())
    stored = "n/a" if phase.stored is None else (
        f"{phase.stored:,} / {len(phase.accepted_ids):,}"
        + (" ✓" if phase.stored == len(phase.accepted_ids) else " **≠**")
    )  # fmt: skip
    throttled = sum(phase.throttled.values())
    return (f"| {phase.target} | {phase.loop} | {phase.ok / phase.seconds:.0f} | "
            f"{cells[0]} | {cells[1]} | {throttled:,} | {errors} | {stored} |")  # fmt: skip


def render(
    args: argparse.Namespace,
    command: str,
    phases: list[Phase],
    warm: dict[str, Any] | None,
    loads: dict[str, tuple[float, float]],
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Command: `{command.strip()}` ({when}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores shared by servers, worker and the client, "
        "and by other work on this machine).",
        "",
        f"Mix: {args.event_share:.0%} `POST /events` (unique `event_id`; {args.retry_share:.0%} "
        f"of them re-send an earlier event verbatim), the rest `GET /recommend` for the same "
        f"{args.shoppers} shoppers; {args.products:,} products, {args.users:,} users. One "
        f"client process (httpx, asyncio). Closed loop: {args.clients} clients for "
        f"{args.duration:.0f} s. Open loop: Poisson arrivals at half the target's closed-loop "
        "rate (429s included) for the same time, latency from the scheduled send time.",
        "",
        "| target | loop | req/s served (2xx) | events p50 / p99 ms | recommend p50 / p99 ms "
        "| 429s | errors | stored / distinct accepted |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [row(p) for p in phases]
    bare_rate = next(
        (p.ok / p.seconds for p in phases if p.target.startswith("bare") and "closed" in p.loop),
        float("nan"),
    )
    lines += ["", "Closed loop, 2xx req/s as a share of the bare app's (target ≥ 30%):", ""]
    for p in phases:
        if "closed" in p.loop and not p.target.startswith("bare"):
            lines.append(f"- {p.target}: **{p.ok / p.seconds / bare_rate:.0%}**")
    problems = [
        f"{p.target} ({p.loop}): " + ", ".join(f"{k}: {v}" for k, v in p.errors.items())
        for p in phases
        if p.errors
    ]
    lines += ["", "Errors (429s apart): " + ("; ".join(problems) if problems else "none") + "."]
    throttled = [p for p in phases if p.throttled]
    if throttled:
        lines += [
            "",
            "429s (the rate limit, reported apart from errors): "
            + "; ".join(
                f"{p.target} ({p.loop}): {sum(p.throttled.values()):,} of "
                f"{p.answered:,} answers ({sum(p.throttled.values()) / p.answered:.0%})"
                for p in throttled
            )
            + ".",
        ]
    lines += [
        "",
        "![closed loop](storefront_closed.png)",
        "",
        "![open loop](storefront_open.png)",
    ]
    if warm is not None:
        lines += [
            "",
            f"Warm start (embedded, catalog indexed, limit lifted): `/health/ready` said ready "
            f"{warm['ready_s']:.1f} s after the process started (startup: "
            f"{warm['startup']['detail'] if warm['startup'] else 'n/a'}). Then 100 sequential "
            "requests of each kind, every one a first (another query, another shopper):",
            "",
            "| request | 1st ms | 100th ms | median of 2nd–100th ms | 1st / median |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for kind, times in warm["times"].items():
            rest = statistics.median(times[1:])
            lines.append(
                f"| {kind} | {times[0]:.1f} | {times[-1]:.1f} | {rest:.1f} | "
                f"{times[0] / rest:.1f}× |"
            )
    lines += [
        "",
        "1-minute load average (start → end of each target's run): "
        + "; ".join(f"{name} {a:.1f} → {b:.1f}" for name, (a, b) in loads.items())
        + ".",
    ]
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=16, help="closed loop")
    parser.add_argument("--rate", type=float, default=None, help="open loop req/s (default: "
                        "half the closed-loop rate)")  # fmt: skip
    parser.add_argument("--event-share", type=float, default=0.5)
    parser.add_argument("--retry-share", type=float, default=0.05)
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--shoppers", type=int, default=100, help="users the storefront serves")
    parser.add_argument("--limits", choices=["default", "lifted", "both"], default="both")
    parser.add_argument("--modes", nargs="+", default=["embedded", "server", "bare"],
                        choices=["embedded", "server", "bare"])  # fmt: skip
    parser.add_argument("--no-warm-start", action="store_true", help="skip indexing + warm start")
    parser.add_argument("--profile", action="store_true", help="py-spy the embedded server")
    parser.add_argument("--profile-raw", type=Path, help="keep py-spy's raw stacks here")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--report", type=Path, default=HERE / "REPORT.md")
    args = parser.parse_args()
    command = "python -m bench.storefront_load " + " ".join(sys.argv[1:])
    if args.profile:
        text = profile(args)
        print(text)
        body = f"Command: `{command.strip()}`\n\n{text}"
        write_section(args.report, "storefront-profile", "Storefront: where the time goes", body)
        return
    run = f"sf{uuid.uuid4().hex[:8]}"
    lifts = {"default": [False], "lifted": [True], "both": [True, False]}[args.limits]
    phases: list[Phase] = []
    loads: dict[str, tuple[float, float]] = {}
    warm: dict[str, Any] | None = None
    sample = b""
    users: list[str] = []
    products: list[str] = []

    def measured(target: Target, users: list[str], products: list[str]) -> None:
        nonlocal sample
        start = os.getloadavg()[0]
        phases.extend(run_target(target, args, run, users, products))
        loads[target.name] = (start, os.getloadavg()[0])
        if not sample and target.database_url is not None:
            sample = httpx.get(f"{target.base}/recommend/{users[-1]}").content

    with tempfile.TemporaryDirectory() as tmp:
        if "embedded" in args.modes:
            url = f"sqlite:///{Path(tmp) / 'shop.db'}"
            users = seed(url, args.products, args.users, random.Random(args.seed))
            products = product_ids(url)
            if not args.no_warm_start:
                print("indexing the catalog (embedding model) …", flush=True)
                env = app_env(url, None, "", tmp)
                subprocess.run([sys.executable, "-m", "backend.cli", "index"], env=env,
                               check=True, stdout=subprocess.DEVNULL)  # fmt: skip
            for lifted in lifts:
                started = time.perf_counter()
                with embedded(tmp, args, lifted) as target:
                    if warm is None and lifted and not args.no_warm_start:
                        print("warm start …", flush=True)
                        warm = warm_start(target.base, users, started,
                                          time.perf_counter() - started)  # fmt: skip
                    measured(target, users, products)
        if "server" in args.modes:
            with ExitStack() as stack:
                pg_url = stack.enter_context(postgres_database())
                users = seed(pg_url, args.products, args.users, random.Random(args.seed))
                products = product_ids(pg_url)
                for lifted in lifts:
                    prefix = f"{run}:{int(lifted)}:"
                    with server_mode(pg_url, tmp, prefix, lifted) as target:
                        measured(target, users, products)
                    client = redis.Redis.from_url(REDIS_URL)
                    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
                    if keys:
                        client.delete(*keys)
                    client.close()
        if "bare" in args.modes:
            users = users or [str(uuid.uuid4()) for _ in range(args.users)]
            products = products or [str(uuid.uuid4()) for _ in range(args.products)]
            body = sample or json.dumps({"recommended_products": []}).encode()
            with bare(tmp, body) as target:
                measured(target, users, products)

    plot(phases, "closed", HERE / "storefront_closed.png")
    plot(phases, "open", HERE / "storefront_open.png")
    text = render(args, command, phases, warm, loads)
    print(text)
    write_section(args.report, "storefront", "Storefront load: closed and open loop", text)


if __name__ == "__main__":
    main()
