"""The evaluation's markdown table and bar chart (committed next to the benchmarks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from backend.recommender.evaluation.runner import Report, Row
from backend.recommender.evaluation.stats import (
    Interval,
    PairedTest,
    bootstrap_interval,
    paired_test,
)

METRICS = ("hr10", "ndcg10", "recall20")
# Targets: absolute NDCG@10 and the ratio to the strongest of these two baselines.
TARGET_NDCG = 0.115
TARGET_RATIO = 1.10
RATIO_AGAINST = ("ease", "sasrec")


_INTERVALS: dict[tuple[int, str], dict[str, Interval]] = {}


def intervals(row: Row, split: str = "test") -> dict[str, Interval]:
    """95% bootstrap intervals over users for each metric of one row.

    The markdown, the JSON and the chart all ask; each row's are resampled once.
    """
    metrics = getattr(row, split)
    key = (id(metrics), split)
    if key not in _INTERVALS:
        _INTERVALS[key] = {
            k: bootstrap_interval(metrics.per_user[k])
            for k in METRICS
            if k in metrics.per_user and len(metrics.per_user[k])
        }
    return _INTERVALS[key]


def versus_best(report: Report) -> PairedTest | None:
    """The hybrid against the best baseline on test NDCG@10, paired over users."""
    best, hybrid = report.best_baseline, report.row("hybrid")
    a, b = hybrid.test.per_user.get("ndcg10"), best.test.per_user.get("ndcg10")
    if a is None or b is None:
        return None
    return paired_test(a, b)


def findings(report: Report) -> list[str]:
    """What the run itself says: whether the sequence source was kept, grid edges."""
    out: list[str] = []
    weight = report.hybrid_weights.get("sequence", 0.0)
    out.append(
        f"The sequence source was kept (validation chose weight {weight:g})."
        if weight > 0
        else "The sequence source was dropped: validation chose weight 0 for it."
    )
    if "next_item" in report.hybrid_weights:
        weight = report.hybrid_weights["next_item"]
        out.append(
            f"The sequential model's next-item source was kept (validation chose weight "
            f"{weight:g})."
            if weight > 0
            else "The sequential model's next-item source was dropped: validation chose "
            "weight 0 for it."
        )
    for name, scored in report.grids.items():
        edges = grid_edges(scored)
        if edges:
            best = max(scored, key=lambda k: scored[k])
            steps = "".join(edge_step(scored, knob) for knob in edges)
            out.append(
                f"{name}: the best setting ({best}) sits at the edge of its grid in "
                f"{', '.join(edges)}{steps}; a wider grid might do better."
            )
    out.append(
        f"Every setting tried and its validation NDCG@10 is in `evaluation.json` (`grids`): "
        f"{sum(len(v) for v in report.grids.values())} settings over {len(report.grids)} "
        "models, plus the hybrid's weight grid."
    )
    return out


def edge_step(scored: dict[str, float], knob: str) -> str:
    """How much the last step along ``knob`` gained, to judge what a wider grid could add:
    " (validation NDCG@10 0.0771, +0.0005 over factors=512)"."""
    points = {label: dict(p.split("=") for p in label.split(", ")) for label in scored}
    best = max(scored, key=lambda k: scored[k])
    others = {k: v for k, v in points[best].items() if k != knob}
    line = sorted(
        (float(p[knob]), label)
        for label, p in points.items()
        if knob in p and {k: v for k, v in p.items() if k != knob} == others
    )
    at = [label for _, label in line].index(best)
    neighbour = line[at - 1 if at > 0 else at + 1][1] if len(line) > 1 else None
    if neighbour is None:
        return ""
    return (
        f" (validation NDCG@10 {scored[best]:.4f}, {scored[best] - scored[neighbour]:+.4f} "
        f"over {knob}={points[neighbour][knob]})"
    )


def grid_edges(scored: dict[str, float]) -> list[str]:
    """The knobs whose best value is the smallest or largest tried ("k=v, k2=v2" labels)."""
    if len(scored) < 3:
        return []
    points = [dict(part.split("=") for part in label.split(", ")) for label in scored]
    best = points[max(range(len(points)), key=lambda i: list(scored.values())[i])]
    edges = []
    for knob, value in best.items():
        tried = sorted({float(p[knob]) for p in points if knob in p})
        if len(tried) >= 3 and float(value) in (tried[0], tried[-1]):
            edges.append(knob)
    return edges


def headline(report: Report) -> str:
    best = report.best_baseline
    hybrid = report.row("hybrid")
    against = [r for r in report.rows if r.strategy in RATIO_AGAINST] or [best]
    strongest = max(against, key=lambda r: r.test.ndcg10)
    ratio = hybrid.test.ndcg10 / strongest.test.ndcg10 if strongest.test.ndcg10 else float("inf")
    test = versus_best(report)
    significant = test is not None and test.significant
    met = hybrid.test.ndcg10 >= TARGET_NDCG and ratio >= TARGET_RATIO and significant
    paired = (
        f"paired over {test.users} users, hybrid − {best.strategy} = {test.difference} "
        f"(bootstrap p={test.bootstrap_p:.2g}, Wilcoxon p={test.wilcoxon_p:.2g})"
        if test is not None
        else "no paired test"
    )
    return (
        f"**Hybrid test NDCG@10 {hybrid.test.ndcg10:.4f} = {ratio:.3f}× the best of "
        f"{' and '.join(r.strategy for r in against)} ({strongest.strategy}, "
        f"{strongest.test.ndcg10:.4f}); best baseline overall: {best.strategy} "
        f"({best.test.ndcg10:.4f}); {paired}.** Targets (NDCG@10 ≥ {TARGET_NDCG}, ≥ "
        f"{TARGET_RATIO:.2f}× and significant): {'met' if met else 'not met'}."
    )


def as_json(report: Report, command: str) -> str:
    """The table for machines (the admin dashboard's Evaluation page reads it)."""
    rows = [
        {
            "strategy": r.strategy,
            "kind": "baseline" if r.baseline else "ours",
            **{f"valid_{k}": getattr(r.valid, k) for k in ("hr10", "ndcg10", "recall20")},
            **{f"test_{k}": getattr(r.test, k) for k in ("hr10", "ndcg10", "recall20")},
            "coverage": r.test.coverage,
            "diversity": r.test.diversity,
            "params": r.params,
            "train_seconds": round(r.seconds, 1),
            "test_ci95": {k: [round(v.low, 5), round(v.high, 5)] for k, v in intervals(r).items()},
            "valid_ci95": {
                k: [round(v.low, 5), round(v.high, 5)] for k, v in intervals(r, "valid").items()
            },
        }
        for r in report.rows
    ]
    test = versus_best(report)
    body = {
        "command": command,
        "dataset": report.dataset,
        "users": report.users,
        "items": report.items,
        "headline": headline(report).replace("**", ""),
        "rows": rows,
        "paired_test": None
        if test is None
        else {
            "a": "hybrid",
            "b": report.best_baseline.strategy,
            "metric": "test_ndcg10",
            "difference": test.difference.mean,
            "difference_ci95": [test.difference.low, test.difference.high],
            "bootstrap_p": test.bootstrap_p,
            "wilcoxon_p": test.wilcoxon_p,
            "users": test.users,
            "a_better": test.a_better,
            "b_better": test.b_better,
            "significant": test.significant,
        },
        "chosen": report.chosen,
        "grids": report.grids,
        "seconds": round(report.seconds, 1),
        "cpu_seconds": round(getattr(report, "cpu_seconds", 0.0), 1),
        "cached": getattr(report, "cached", []),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return json.dumps(body, indent=2) + "\n"


def markdown(report: Report, command: str) -> str:
    lines = [
        "# Offline evaluation",
        "",
        f"Command: `{command}`",
        "",
        f"Dataset `{report.dataset}`: {report.users} users, {report.items} items; leave-one-out "
        "with full ranking (every item not in the user's history is a candidate). Models learn "
        "from each split's histories only; every hyper-parameter and the hybrid's weights were "
        "chosen on the validation targets, then frozen for test. HR@K equals Recall@K with one "
        "target per user. Coverage: share of the catalogue in some top-10; diversity: mean "
        "pairwise (1 − cosine) of the text embeddings within a top-10.",
        "",
        headline(report),
        "",
        "Test figures carry 95% bootstrap intervals over users (2,000 resamples of the "
        "users, percentile method); the paired test compares per-user NDCG@10 of the hybrid "
        "and the best baseline on the same users (paired bootstrap of the mean difference, "
        "and the Wilcoxon signed-rank test).",
        "",
        "| strategy | kind | valid HR@10 | valid NDCG@10 | valid R@20 | test HR@10 [95% CI] | "
        "test NDCG@10 [95% CI] | test R@20 [95% CI] | coverage | diversity | "
        "chosen on validation |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in report.rows:
        kind = "baseline" if r.baseline else "ours"
        ci = intervals(r)

        def cell(k: str, value: float, bold: bool = False, ci: dict[str, Interval] = ci) -> str:
            text = f"**{value:.4f}**" if bold else f"{value:.4f}"
            return f"{text} [{ci[k].low:.4f}, {ci[k].high:.4f}]" if k in ci else text

        lines.append(
            f"| {r.strategy} | {kind} | {r.valid.hr10:.4f} | {r.valid.ndcg10:.4f} | "
            f"{r.valid.recall20:.4f} | {cell('hr10', r.test.hr10)} | "
            f"{cell('ndcg10', r.test.ndcg10, True)} | {cell('recall20', r.test.recall20)} | "
            f"{r.test.coverage:.3f} | {r.test.diversity:.3f} | {r.params} |"
        )
    lines += ["", "Chosen on validation (NDCG@10):", ""]
    lines += [f"- {name}: {value}" for name, value in report.chosen.items()]
    notes = list(report.notes) + ["", *(f"- {line}" for line in findings(report))]
    if report.seconds:
        cached = getattr(report, "cached", [])
        cpu = getattr(report, "cpu_seconds", 0.0)
        notes += [
            "",
            f"Run time: {report.seconds / 60:.1f} min wall-clock"
            + (f" ({cpu / 60:.1f} min of CPU in this process)" if cpu else "")
            + " on this 2-core machine, shared with other jobs while it ran; "
            + (
                "a cold run: nothing was read from a cache, every model was trained in it."
                if not cached
                else f"read from the cache instead of computed: {', '.join(cached)} (their "
                "time is not part of this run's)."
            ),
        ]
    lines += ["", *notes, "", "![NDCG@10 per strategy](evaluation.png)", ""]
    return "\n".join(lines)


def chart(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.strategy for r in report.rows]
    valid = [r.valid.ndcg10 for r in report.rows]
    test = [r.test.ndcg10 for r in report.rows]
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    ax.bar([i - 0.2 for i in x], valid, width=0.4, label="validation", color="#9bb7d4")
    cis = [intervals(r).get("ndcg10") for r in report.rows]
    errors = [
        [t - c.low if c else 0.0 for t, c in zip(test, cis, strict=True)],
        [c.high - t if c else 0.0 for t, c in zip(test, cis, strict=True)],
    ]
    ax.bar(
        [i + 0.2 for i in x],
        test,
        width=0.4,
        label="test (95% CI)",
        color="#1f5f99",
        yerr=errors,
        capsize=2,
        ecolor="#333333",
    )
    best = report.best_baseline.test.ndcg10
    ax.axhline(
        best * TARGET_RATIO,
        color="#c0392b",
        linestyle="--",
        linewidth=1,
        label=f"{TARGET_RATIO:.2f}× best baseline",
    )
    ax.set_xticks(list(x), names, rotation=30, ha="right")
    ax.set_ylabel("NDCG@10")
    ax.set_title(f"Leave-one-out, full ranking: {report.dataset} ({report.users} users)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_all(report: Report, out: Path, command: str) -> None:
    """The markdown at ``out`` with evaluation.json and evaluation.png beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(report, command), encoding="utf-8")
    out.with_name("evaluation.json").write_text(as_json(report, command), encoding="utf-8")
    chart(report, out.with_name("evaluation.png"))


def main() -> None:
    """Re-render a finished run (the pickle ``evaluate`` leaves in its cache folder)."""
    import argparse
    import pickle

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--run", type=Path, required=True, help="report-<dataset>.pkl")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--command", required=True, help="the command that produced the run")
    args = parser.parse_args()
    report = pickle.loads(args.run.read_bytes())  # noqa: S301 - our own cache file
    write_all(report, args.out, args.command)


if __name__ == "__main__":
    main()
