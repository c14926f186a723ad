"""The evaluation's markdown table and bar chart (committed next to the benchmarks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from backend.recommender.evaluation.runner import Report


def headline(report: Report) -> str:
    best = report.best_baseline
    hybrid = report.row("hybrid")
    ratio = hybrid.test.ndcg10 / best.test.ndcg10 if best.test.ndcg10 else float("inf")
    verdict = "meets" if ratio >= 1.15 else f"falls short of (by {1.15 - ratio:.3f}×)"
    return (
        f"**Hybrid test NDCG@10 {hybrid.test.ndcg10:.4f} = {ratio:.3f}× the best baseline "
        f"({best.strategy}, {best.test.ndcg10:.4f})**: {verdict} the 1.15× target."
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
        }
        for r in report.rows
    ]
    body = {
        "command": command,
        "dataset": report.dataset,
        "users": report.users,
        "items": report.items,
        "headline": headline(report).replace("**", ""),
        "rows": rows,
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
        "| strategy | kind | valid HR@10 | valid NDCG@10 | valid R@20 | test HR@10 | "
        "test NDCG@10 | test R@20 | coverage | diversity | chosen on validation |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in report.rows:
        kind = "baseline" if r.baseline else "ours"
        lines.append(
            f"| {r.strategy} | {kind} | {r.valid.hr10:.4f} | {r.valid.ndcg10:.4f} | "
            f"{r.valid.recall20:.4f} | {r.test.hr10:.4f} | **{r.test.ndcg10:.4f}** | "
            f"{r.test.recall20:.4f} | {r.test.coverage:.3f} | {r.test.diversity:.3f} | "
            f"{r.params} |"
        )
    lines += ["", "Chosen on validation (NDCG@10):", ""]
    lines += [f"- {name}: {value}" for name, value in report.chosen.items()]
    if report.seconds:
        report.notes += ["", f"Run time: {report.seconds / 60:.0f} min on this 2-core machine."]
    lines += ["", *report.notes, "", "![NDCG@10 per strategy](evaluation.png)", ""]
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
    ax.bar([i + 0.2 for i in x], test, width=0.4, label="test", color="#1f5f99")
    best = report.best_baseline.test.ndcg10
    ax.axhline(
        best * 1.15, color="#c0392b", linestyle="--", linewidth=1, label="1.15× best baseline"
    )
    ax.set_xticks(list(x), names, rotation=30, ha="right")
    ax.set_ylabel("NDCG@10")
    ax.set_title(f"Leave-one-out, full ranking: {report.dataset} ({report.users} users)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
