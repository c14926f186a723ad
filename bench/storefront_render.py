"""The storefront section of the report: table, ratios, latency plots."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import (
    pct,
)
from bench.storefront_traffic import EVENT, RECOMMEND, Phase


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
