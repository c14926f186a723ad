"""One report for all benchmarks: each script rewrites only its own marked section."""

from __future__ import annotations

import re
from pathlib import Path

HEADER = (
    "# Shopwise benchmark report\n\n"
    "Figures from this machine (2 cores, shared and noisy): compare medians and ratios measured "
    "in the same run. Every section names the command that produced it; `make bench` reruns "
    "them all.\n"
)


def write_section(report: Path, key: str, title: str, body: str) -> None:
    text = report.read_text(encoding="utf-8") if report.exists() else HEADER
    block = f"<!-- {key}:start -->\n## {title}\n\n{body.strip()}\n<!-- {key}:end -->"
    pattern = re.compile(rf"<!-- {re.escape(key)}:start -->.*?<!-- {re.escape(key)}:end -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    report.write_text(text, encoding="utf-8")
