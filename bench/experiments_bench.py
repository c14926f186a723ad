"""What experiments and the impression log cost a cached recommendation.

The same cached ``recommend_json()`` call (the hot path of GET /recommend), in process, three
ways, interleaved in rounds so the machine's noise hits all alike: (a) without experiments or
impression log, (b) with the impression log (every answer queued for the background writer),
(c) with the log and a running two-variant experiment (bucketing + the variant in the cache
key). Both variants use the default configuration, so every mode serves the same lists and
only the experiment machinery differs. Then the
background flush: rows written per second into ``rec_analytics`` on SQLite.

Run: ``python -m bench.experiments_bench`` (part of ``make bench``). Writes its section of
``bench/REPORT.md``.
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import tempfile
import time
from pathlib import Path

from backend.config import PROJECT_ROOT, load_settings
from backend.db.engine import make_engine
from backend.db.migrate import upgrade
from backend.experiments.model import ExperimentCreate
from backend.jobs.impressions import ImpressionLogger
from backend.services.experiments import ExperimentService
from backend.services.recommend import RecommendationService
from backend.wiring import Components, build_components
from bench.report import write_section
from tests.experiments.conftest import build_synthetic_shop


def variant(
    components: Components,
    impressions: ImpressionLogger | None,
    experiments: ExperimentService | None,
) -> RecommendationService:
    """The app's recommender with or without the impression log and the experiments, over
    the same snapshot, strategies and cache (so every mode serves the same cached lists)."""
    base = components.recommender
    return RecommendationService(
        db=base.db,
        snapshots=base.snapshots,
        strategies=base.strategies,
        default_strategy=base.default_strategy,
        explainer=base.explainer,
        prompts=base.prompts,
        cache=base.cache,
        cache_ttl_seconds=base.cache_ttl_seconds,
        half_life_days=base.half_life_days,
        metrics=base.metrics,
        impressions=impressions,
        experiments=experiments,
    )


def per_call_us(call, users, repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        for user in users:
            call(user)
    return (time.perf_counter() - started) / (repeats * len(users)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=40, help="calls per user per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--report", type=Path, default=PROJECT_ROOT / "bench" / "REPORT.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        settings = load_settings(
            _env_file=None,
            data_dir=Path(tmp),
            database_url=url,
            snapshot_refresh_seconds=0,
            cf_auto_train=False,
            prompts_dir=PROJECT_ROOT / "prompts",
        )
        components = build_components(settings)
        shoppers = build_synthetic_shop(components.db, args.users)
        users = list(shoppers.favourite)
        logger = ImpressionLogger(db=components.db, max_pending=10_000_000)
        experiments = components.experiments
        services = {
            "bare": variant(components, None, None),
            "log": variant(components, logger, None),
            "experiment": variant(components, logger, experiments),
        }

        experiments.create(ExperimentCreate.model_validate({"name": "bench", "variants": [
            {"name": "A", "share": 0.5}, {"name": "B", "share": 0.5}]}))  # fmt: skip
        timings: dict[str, list[float]] = {"bare": [], "log": [], "experiment": []}
        for mode in timings:  # warm every cache field
            for user in users:
                services[mode].recommend_json(user, top_n=5)
        for _ in range(args.rounds):
            for mode in timings:
                call = functools.partial(services[mode].recommend_json, top_n=5)
                timings[mode].append(per_call_us(call, users, args.repeats))
        queued = logger.pending
        started = time.perf_counter()
        rows = logger.flush()
        flush_seconds = time.perf_counter() - started
        components.db.dispose()

    med = {mode: statistics.median(values) for mode, values in timings.items()}
    calls = args.users * args.repeats
    body = f"""
Command: `python -m bench.experiments_bench --users {args.users} --repeats {args.repeats} \
--rounds {args.rounds}` ({platform.python_version()}, {platform.machine()}).

Cached `recommend_json()` in process (top 5, SQLite, in-process cache), {calls} calls per round,
median of {args.rounds} interleaved rounds:

| configuration | µs per call | vs. without |
|---|---|---|
| no experiments, no impression log | {med["bare"]:.1f} | 1.00 |
| impression log (queued, written in the background) | {med["log"]:.1f} | \
{med["log"] / med["bare"]:.2f} |
| impression log + running two-variant experiment | {med["experiment"]:.1f} | \
{med["experiment"] / med["bare"]:.2f} |

Background flush: {queued} queued answers → {rows} `rec_analytics` rows in \
{flush_seconds:.2f} s ({rows / flush_seconds:,.0f} rows/s, multi-row inserts of 1,000).
"""
    print(body)
    write_section(args.report, "experiments", "Experiments and the impression log", body)


if __name__ == "__main__":
    main()
