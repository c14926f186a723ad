"""Amazon 2018 review and metadata files → RecBole atomic files the evaluation can read.

The importer's reading and cleaning (``backend.importers.amazon``) turn each review into an
interaction and each product's metadata into an ``X.item`` row (title, categories as a
comma-separated token_seq, brand), so the generic loader finds categories and tags exactly
as the shop would after an import. The files go to a data folder, never into the repository.

    python -m backend.recommender.evaluation.amazon_atomic \\
        --reviews ../shared/datasets/amazon-gift-cards/Gift_Cards_5.json.gz \\
        --meta ../shared/datasets/amazon-gift-cards/meta_Gift_Cards.json.gz \\
        --out data/datasets/GiftCards
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backend.importers.amazon import ImportReport, _records, clean_text


def _field(value: str) -> str:
    """No tabs or newlines inside an atomic file's cell."""
    return " ".join(value.split())


def write_atomic(reviews: Path, meta: Path, out: Path, name: str | None = None) -> ImportReport:
    """Write ``<name>.inter`` and ``<name>.item`` into ``out``; returns what was skipped."""
    report = ImportReport()
    name = name or out.name
    out.mkdir(parents=True, exist_ok=True)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    seen: set[str] = set()
    for record in _records(reviews, report, "review"):
        user, asin = str(record.get("reviewerID") or ""), str(record.get("asin") or "")
        when = record.get("unixReviewTime")
        if not user or not asin or not isinstance(when, int | float):
            report.skipped["review: no reviewer, asin or time"] += 1
            continue
        seen.add(asin)
        inter.append(f"{user}\t{asin}\t{float(record.get('overall') or 0):g}\t{int(when)}")
    items = ["item_id:token\ttitle:token_seq\tcategories:token_seq\tbrand:token"]
    for record in _records(meta, report, "product"):
        asin = str(record.get("asin") or "").strip()
        if asin not in seen:
            continue  # only items with interactions are ranked
        seen.discard(asin)  # the metadata file repeats some products: first one wins
        categories = list(
            dict.fromkeys(
                _field(clean_text(c, 120)).replace(",", " ")
                for c in record.get("category") or []
                if clean_text(c)
            )
        )
        items.append(
            "\t".join(
                [
                    asin,
                    _field(clean_text(record.get("title"), 300)),
                    ", ".join(categories),
                    _field(clean_text(record.get("brand"), 60)),
                ]
            )
        )
    (out / f"{name}.inter").write_text("\n".join(inter) + "\n", encoding="utf-8")
    (out / f"{name}.item").write_text("\n".join(items) + "\n", encoding="utf-8")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=Path, required=True)
    parser.add_argument("--meta", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    report = write_atomic(args.reviews, args.meta, args.out)
    skipped = ", ".join(f"{n} {why}" for why, n in report.skipped.items()) or "nothing"
    sys.stdout.write(f"wrote {args.out}; skipped: {skipped}\n")


if __name__ == "__main__":
    main()
