"""What the load benchmarks share: a seeded shop, a scratch PostgreSQL database, the app's
environment, processes started and stopped around a run, percentiles.

Loopback only; every database and key prefix a run creates is its own and removed after it.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import sqlalchemy as sa

from backend.config import PROJECT_ROOT
from backend.db.engine import make_engine, session_scope
from backend.db.migrate import upgrade
from backend.db.models import Interaction, Product, User

POSTGRES_URL = os.environ.get(
    "SHOPWISE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SHOPWISE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
ACTIONS = ["view"] * 6 + ["click"] * 2 + ["add_to_cart", "wishlist", "purchase"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(database_url: str, n_products: int, n_users: int, rng: random.Random) -> list[str]:
    """A synthetic shop; returns the user ids."""
    engine = make_engine(database_url)
    upgrade(engine)
    categories = [f"Category {i}" for i in range(max(5, n_products // 50))]
    tags = [f"tag{i}" for i in range(max(20, n_products // 10))]
    products = [
        Product(
            name=f"Product {i}",
            description=f"Synthetic product {i}.",
            category=rng.choice(categories),
            price=Decimal(rng.randint(5, 300)),
            quantity=rng.randint(0, 20),
            tags=rng.sample(tags, 3),
        )
        for i in range(n_products)
    ]
    users = [User(username=f"shopper{i}", email=f"shopper{i}@example.com") for i in range(n_users)]
    with session_scope(engine) as session:
        session.add_all(products)
        session.add_all(users)
        session.flush()
        session.add_all(
            Interaction(
                user_id=u.id, product_id=rng.choice(products).id, action=rng.choice(ACTIONS)
            )
            for u in users
            for _ in range(rng.randint(1, 8))
        )
    engine.dispose()
    return [str(u.id) for u in users]


def product_ids(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        ids = [str(r[0]) for r in conn.execute(sa.text("SELECT id FROM product"))]
    engine.dispose()
    return ids


def stored_bench_events(database_url: str, run: str) -> int:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        n = conn.execute(
            sa.text("SELECT count(*) FROM interaction WHERE event_id LIKE :p"), {"p": f"{run}-%"}
        ).scalar_one()
    engine.dispose()
    return int(n)


@contextmanager
def postgres_database() -> Iterator[str]:
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"shopwise_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def app_env(
    database_url: str,
    redis_url: str | None,
    prefix: str,
    data_dir: str,
    *,
    lift_rate_limit: bool = True,
) -> dict[str, str]:
    """The app's environment for a run; ``lift_rate_limit=False`` keeps the default limits
    (the bench is one client IP, so they apply to the whole run)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REDIS_", "DATABASE_", "OPENAI_", "AUTH_"))
    }
    env |= {
        "DATABASE_URL": database_url,
        "DATA_DIR": data_dir,
        "PROMPTS_DIR": str(PROJECT_ROOT / "prompts"),
        "LOG_LEVEL": "WARNING",
        "SNAPSHOT_REFRESH_SECONDS": "5",
    }
    if lift_rate_limit:
        env["RATE_LIMIT_PER_MINUTE"] = "100000000"
    if redis_url:
        env |= {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}
    return env


@contextmanager
def process(
    args: list[str], env: dict[str, str], ready_url: str | None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        if ready_url:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(ready_url, timeout=2).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
                    raise RuntimeError(f"{args[:4]} did not start:\n{err}")
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve_cmd(port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "backend.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers)]  # fmt: skip


def wait_ready(base: str, seconds: float = 180, in_a_row: int = 10) -> float:
    """Until ``/health/ready`` says ready ``in_a_row`` times, each on a new connection: with
    ``--workers 2`` one process can be ready while the other still warms up (and trains)."""
    started = time.perf_counter()
    ready = 0
    while time.perf_counter() - started < seconds:
        try:
            ok = httpx.get(f"{base}/health/ready", timeout=5).status_code == 200
        except httpx.TransportError:
            ok = False
        ready = ready + 1 if ok else 0
        if ready >= in_a_row:
            return time.perf_counter() - started
        time.sleep(0.01 if ok else 0.05)
    raise RuntimeError(f"{base} not ready after {seconds:.0f} s")


def uvicorn(app: str, port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--log-level", "warning",
            "--no-access-log"]  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]
