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
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import redis
import sqlalchemy as sa

from bench.harness import (
    POSTGRES_URL,
    REDIS_URL,
    app_env,
    cpu_seconds,
    free_port,
    postgres_database,
    process,
    product_ids,
    seed,
    serve_cmd,
    stored_bench_events,
    uvicorn,
    wait_ready,
)
from bench.report import write_section
from bench.storefront_profile import profile
from bench.storefront_render import plot, render
from bench.storefront_tail import CpuTimeline, app_pids, probe_env, redis_pid, spy, summarise
from bench.storefront_traffic import Phase, Traffic, closed_loop, open_loop

HERE = Path(__file__).parent

# --- targets -------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    base: str
    database_url: str | None  # None: nothing is stored (the bare app)
    # The app's processes by role (their children counted with them): "api", "worker".
    pids: tuple[tuple[str, int], ...] = ()
    # The embedded server: its children (the event worker process, EVENT_WORKER_PROCESS) are
    # counted apart as "worker process", so "api" is the one process whose GIL the requests
    # queue on.
    separate_children: bool = False

    def cpu(self) -> CpuSample:
        """CPU time each of the app's processes, and the PostgreSQL backends serving its
        database, have used so far."""
        sample = {role: tree_cpu(pid, {}) for role, pid in self.pids}
        if self.separate_children:
            for role, pid in self.pids:
                tree = sample[role]
                sample[role] = {pid: tree.pop(pid)} if pid in tree else {}
                sample["worker process"] = tree
        if self.database_url is not None and self.database_url.startswith("postgresql"):
            backends: dict[int, float] = {}
            for pid in postgres_backends(self.database_url):
                tree_cpu(pid, backends)  # (a backend has no children)
            sample["postgres"] = backends
        return sample


CpuSample = dict[str, dict[int, float]]  # role -> process -> CPU seconds so far


def tree_cpu(pid: int, into: dict[int, float]) -> dict[int, float]:
    """A process's CPU time and its living descendants' (uvicorn's worker processes), Linux."""
    try:
        into[pid] = cpu_seconds(pid)
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                tree_cpu(int(child), into)
    except (FileNotFoundError, ProcessLookupError):
        pass  # gone meanwhile
    return into


def postgres_backends(database_url: str) -> list[int]:
    """The server processes serving this database's connections (one per connection)."""
    database = sa.engine.make_url(database_url).database
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.connect() as conn:
            pids = conn.execute(  # (this connection is to another database)
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": database}
            ).scalars()
            return [int(pid) for pid in pids]
    finally:
        admin.dispose()


def cpu_used(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """CPU seconds per role between two samples (a process that started meanwhile counts
    from zero; one that ended meanwhile is lost: connections are pooled, so few)."""
    return {
        role: sum(cpu - before.get(role, {}).get(pid, 0.0) for pid, cpu in pids.items())
        for role, pids in after.items()
    }


@dataclass(frozen=True)
class Code:
    """Which checkout the app processes run: this one, or ``--baseline`` (a tree of an earlier
    commit), so a change is measured against its baseline in one run, under the same load."""

    root: Path | None = None  # None: this checkout
    # --baseline-env: settings of the baseline only, so one tree (``--baseline .``) gives an
    # A/B of a setting in one run.
    extra_env: tuple[tuple[str, str], ...] = ()
    round: int = 0  # --rounds: which of the alternating runs (0: a single run)

    @property
    def tag(self) -> str:
        return ("" if self.root is None else " [baseline]") + (
            f" #{self.round}" if self.round else ""
        )

    @property
    def key(self) -> str:
        """The tag as a Redis key part."""
        return ("b" if self.root is not None else "") + (str(self.round) if self.round else "")

    def cmd(self, args: list[str]) -> list[str]:
        # -P: the working directory (this checkout) is not put first on sys.path, so the
        # baseline's PYTHONPATH decides which backend is imported.
        return args if self.root is None else [args[0], "-P", *args[1:]]

    def env(self, env: dict[str, str]) -> dict[str, str]:
        if self.root is None:
            return env
        return env | {"PYTHONPATH": str(self.root), **dict(self.extra_env)}

    def seed(self, url: str, args: argparse.Namespace) -> list[str]:
        """The bench's shop, created by this checkout's own migrations and models: a
        baseline from before a schema change cannot serve a database migrated past it."""
        if self.root is None:
            return seed(url, args.products, args.users, random.Random(args.seed))
        script = (
            "import json, random, sys; from bench.harness import seed; "
            "print(json.dumps(seed(sys.argv[1], *map(int, sys.argv[2:4]), "
            "random.Random(int(sys.argv[4])))))"
        )
        argv = [url, str(args.products), str(args.users), str(args.seed)]
        done = subprocess.run(self.cmd([sys.executable, "-c", script, *argv]),
                              env=self.env(dict(os.environ)), check=True,
                              capture_output=True, text=True)  # fmt: skip
        users: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
        return users


def run_order(baseline: Code, *, first: bool, rounds: int) -> list[Code]:
    """The baseline and this checkout, ``rounds`` times, alternating which goes first (A B B A
    A B …), each round numbered when there are several."""
    pair = [baseline, Code()] if first else [Code(), baseline]
    codes: list[Code] = []
    for n in range(rounds):
        order = pair if n % 2 == 0 else pair[::-1]
        codes += [replace(c, round=n + 1 if rounds > 1 else 0) for c in order]
    return codes


TAIL_DIR: Path | None = None  # --tail-dir: the app processes load the GC probe


def probed(env: dict[str, str]) -> dict[str, str]:
    return env if TAIL_DIR is None else probe_env(env, TAIL_DIR)


@contextmanager
def embedded(tmp: str, url: str, lifted: bool, code: Code = Code()) -> Iterator[Target]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = probed(code.env(app_env(url, None, "", tmp, lift_rate_limit=lifted)))
    with process(code.cmd(serve_cmd(port, 1)), env, f"{base}/health") as server:
        wait_ready(base)
        name = f"embedded, {'limit lifted' if lifted else 'default limits'}{code.tag}"
        yield Target(name, base, url, (("api", server.pid),), separate_children=True)


@contextmanager
def server_mode(
    pg_url: str, tmp: str, prefix: str, lifted: bool, code: Code = Code()
) -> Iterator[Target]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = probed(code.env(app_env(pg_url, REDIS_URL, prefix, tmp, lift_rate_limit=lifted)))
    worker = code.cmd([sys.executable, "-m", "backend.cli", "worker"])
    with (
        process(code.cmd(serve_cmd(port, 2)), env, f"{base}/health") as server,
        process(worker, env, None) as worker_process,
    ):
        wait_ready(base)
        name = f"server mode, {'limit lifted' if lifted else 'default limits'}{code.tag}"
        yield Target(name, base, pg_url, (("api", server.pid), ("worker", worker_process.pid)))


@contextmanager
def bare(tmp: str, sample: bytes) -> Iterator[Target]:
    path = Path(tmp) / "recommend.json"
    path.write_bytes(sample)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ) | {"BENCH_BARE_JSON": str(path)}
    with process(
        uvicorn("bench.storefront_traffic:bare_app", port, 1), env, f"{base}/health/ready"
    ) as server:
        yield Target("bare FastAPI (same routes, no work)", base, None, (("api", server.pid),))


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
    phases: list[Phase] = []
    for loop in ("closed", "open"):
        prefix = f"{run}-{key}-{loop}"
        cpu = target.cpu()
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
            with watched(target, args, prefix, phase):
                asyncio.run(open_loop(target.base, phase, traffic, rate, args.duration, rng))
        if target.database_url is not None:
            phase.stored = wait_stored(target, prefix, len(phase.accepted_ids))
            time.sleep(SETTLE_SECONDS)  # the work the phase left behind, counted with it
        phase.cpu_seconds = cpu_used(cpu, target.cpu())
        if target.database_url is not None:
            phase.worker = worker_detail(target.base)
        phases.append(phase)
    return phases


@contextmanager
def watched(target: Target, args: argparse.Namespace, tag: str, phase: Phase) -> Iterator[None]:
    """With ``--tail-dir``: the processes' CPU every 0.1 s (and with ``--spy`` their stacks)
    during the phase, then its slowest seconds beside them (printed, and kept as text with
    the raw timeline in the directory)."""
    if args.tail_dir is None:
        yield
        return
    pids = app_pids(target.pids)
    if target.database_url is not None and target.database_url.startswith("postgresql"):
        pids |= {pid: "postgres" for pid in postgres_backends(target.database_url)}
    if (redis := redis_pid()) is not None and "worker" in dict(target.pids):
        pids[redis] = "redis"
    cpu = CpuTimeline(pids)
    cpu.start()
    spies = spy(pids, args.duration + 1, args.tail_dir, tag) if args.spy else []
    time.sleep(0.5 if spies else 0)  # attached before the load starts
    try:
        yield
    finally:
        cpu.stop()
        for p in spies:
            p.wait(timeout=120)
    text = summarise(phase, cpu, args.tail_dir, pids, tag if spies else None)
    print(text, flush=True)
    TAILS.append(text)
    (args.tail_dir / f"{tag}.txt").write_text(text + "\n")
    (args.tail_dir / f"{tag}-timeline.json").write_text(json.dumps(
        {"target": target.name, "started": phase.started, "timeline": phase.timeline,
         "client_stalls": phase.client_stalls, "client_gc": phase.client_gc,
         "pids": pids}))  # fmt: skip


TAILS: list[str] = []

# After a phase's events are stored, the worker's deferred work (lists waiting for a shopper's
# events to pause, PRECOMPUTE_DEBOUNCE_SECONDS) is still to come: it belongs to that phase.
SETTLE_SECONDS = 3.0


def worker_detail(base: str) -> str | None:
    """What /health says of the event worker (the in-process one counts its lists)."""
    try:
        health = httpx.get(f"{base}/health", timeout=10).json()
        return str(health["components"]["worker"]["detail"])
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def cpu_lines(phases: list[Phase]) -> list[str]:
    """The app's CPU per answered request: less moved by other work on the machine than rates
    and tails are (PostgreSQL and Redis are not counted)."""
    lines = ["", "CPU per 2xx request (the app's processes and their children, and the "
             "PostgreSQL backends of its database, from each phase's start until its events "
             "are stored and 3 s after; Redis not counted):", ""]  # fmt: skip
    for p in phases:
        if p.cpu_seconds is not None and p.ok:
            parts = {k: v * 1000 / p.ok for k, v in p.cpu_seconds.items()}
            split = ", ".join(f"{k} {v:.2f}" for k, v in parts.items()) if len(parts) > 1 else ""
            total = f"{sum(parts.values()):.2f} ms" + (f" ({split})" if split else "")
            lines.append(f"- {p.target} ({p.loop}): {total}")
    lines += ["", "The event worker after each phase (/health, counted since the start):", ""]
    lines += [f"- {p.target} ({p.loop}): {p.worker}" for p in phases if p.worker]
    return lines


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
            requests: tuple[tuple[str, str, dict[str, str | int]], ...] = (
                ("GET /search", "/search", {"q": f"{words[i % 10]} {i}", "top_n": 10}),
                ("GET /recommend", f"/recommend/{users[-(i + 1)]}", {}),
            )
            for kind, path, params in requests:
                t0 = time.perf_counter()
                r = client.get(path, params=params)
                times[kind].append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"warm start: {kind} answered {r.status_code}: {r.text}")
        out["startup"] = client.get("/health/ready").json()["components"].get("startup")
    out["times"] = dict(times)
    return out


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
    parser.add_argument("--profile-db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tail-dir", type=Path, help="open loops: per-second p99 beside each "
                        "process's CPU and GC pauses, kept in this directory")  # fmt: skip
    parser.add_argument("--spy", action="store_true", help="with --tail-dir: py-spy every app "
                        "process during the open loops (timestamped stacks)")  # fmt: skip
    parser.add_argument("--report", type=Path, default=HERE / "REPORT.md")
    parser.add_argument("--baseline", type=Path, help="also run the app targets from this tree "
                        "of an earlier commit (e.g. `git archive <commit> | tar -x -C DIR`), "
                        "each on a database of its own, next to this checkout's")  # fmt: skip
    parser.add_argument("--baseline-order", choices=["first", "last"], default="first",
                        help="the baseline before or after this checkout")  # fmt: skip
    parser.add_argument("--baseline-env", action="append", default=[], metavar="KEY=VALUE",
                        help="set in the baseline's environment only (repeatable); with "
                        "`--baseline .` an A/B of a setting on the same code")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1, help="with --baseline: run the pair "
                        "this many times, alternating which goes first (drift on a shared "
                        "machine moves one run's figures more than most changes do)")  # fmt: skip
    args = parser.parse_args()
    global TAIL_DIR
    if args.tail_dir is not None:
        args.tail_dir.mkdir(parents=True, exist_ok=True)
        TAIL_DIR = args.tail_dir.resolve()
    command = "python -m bench.storefront_load " + " ".join(sys.argv[1:])
    if args.profile:
        text = profile(args)
        print(text)
        section = f"Command: `{command.strip()}`\n\n{text}"
        key = "storefront-profile" + ("-postgres" if args.profile_db == "postgres" else "")
        title = "Storefront: where the time goes" + (
            " (PostgreSQL)" if args.profile_db == "postgres" else ""
        )
        write_section(args.report, key, title, section)
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

    codes = [Code()]
    if args.baseline is not None:
        extra = tuple((k, v) for k, _, v in (kv.partition("=") for kv in args.baseline_env))
        baseline = Code(args.baseline.resolve(), extra)
        codes = run_order(baseline, first=args.baseline_order == "first", rounds=args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        if "embedded" in args.modes:
            for n, code in enumerate(codes):  # each on a fresh copy of the same seeded shop
                url = f"sqlite:///{Path(tmp) / f'shop{n}.db'}"
                users = code.seed(url, args)
                products = product_ids(url)
                indexed = not args.no_warm_start and code.root is None
                if indexed:
                    print("indexing the catalog (embedding model) …", flush=True)
                    env = app_env(url, None, "", tmp)
                    subprocess.run([sys.executable, "-m", "backend.cli", "index"], env=env,
                                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
                for lifted in lifts:
                    started = time.perf_counter()
                    with embedded(tmp, url, lifted, code) as target:
                        if warm is None and lifted and indexed:
                            print("warm start …", flush=True)
                            warm = warm_start(target.base, users, started,
                                              time.perf_counter() - started)  # fmt: skip
                        measured(target, users, products)
        if "server" in args.modes:
            for code in codes:
                with ExitStack() as stack:
                    pg_url = stack.enter_context(postgres_database())
                    users = code.seed(pg_url, args)
                    products = product_ids(pg_url)
                    for lifted in lifts:
                        prefix = f"{run}:{int(lifted)}{code.key}:"
                        with server_mode(pg_url, tmp, prefix, lifted, code) as target:
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

    # Next to the report: a run written elsewhere leaves the report's own plots alone.
    plot(phases, "closed", args.report.parent / "storefront_closed.png")
    plot(phases, "open", args.report.parent / "storefront_open.png")
    text = render(args, command, phases, warm, loads) + "\n".join(cpu_lines(phases))
    if TAILS:
        text += "\n\nThe open loops' slowest seconds:\n\n" + "\n\n".join(TAILS)
    print(text)
    write_section(args.report, "storefront", "Storefront load: closed and open loop", text)


if __name__ == "__main__":
    main()
