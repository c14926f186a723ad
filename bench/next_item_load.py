"""What a model version with a next-item model costs a serving process to load: wall time,
CPU time and resident memory of the app's warm start, and of the version load alone (what
the background loader does when the worker saves a newer version), each in a fresh process.

An A/B across source trees (``--tree label=path``, e.g. a commit extracted with ``git
archive``): each tree saves a version in its own file format, a SASRec of the served shape
(2 layers, d=64, the items' 384-d text added; random weights: loading does not depend on
their values) over ``--items`` products and no other model, so the figures are the next-item
model's. The trees' fresh processes alternate, round after round; medians are reported.

Run: ``python -m bench.next_item_load --tree before=/tmp/base --tree after=. --items 10000``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SETUP = """
import json, sys, uuid
from pathlib import Path
import numpy as np
from backend.db.engine import make_engine, session_scope
from backend.db.migrate import upgrade
from backend.db.models import ModelVersion
from backend.recommender import cf, sequential
data, url, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
engine = make_engine(url)
upgrade(engine)
params = sequential.SeqParams(text="add")
text = np.random.default_rng(0).normal(size=(n, 384)).astype(np.float32)
model = sequential.build_model(n, params, text)
if hasattr(sequential, "to_numpy"):  # saved as served, numpy arrays
    scorer = sequential.to_numpy(model, params)
else:  # saved with torch.save
    scorer = sequential.NextItemScorer(model, params)
models = cf.CFModels(version="bench", item_ids=[uuid.uuid4() for _ in range(n)], next_item=scorer)
path = data / "models" / "cf-bench.npz"
cf.save(models, path)
with session_scope(engine) as session:
    session.add(ModelVersion(version="bench", kinds=models.kinds(), n_items=n))
engine.dispose()
print(json.dumps({p.name: p.stat().st_size for p in sorted(path.parent.iterdir())}))
"""

MEASURE = """
import json, os, resource, sys, time
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
out = {}
if sys.argv[1] == "warm":
    from fastapi.testclient import TestClient
    from backend.main import create_app
    app = create_app(warm_in_background=False)
    r0, c0, t0 = rss(), cpu(), time.perf_counter()
    with TestClient(app):  # the lifespan: build, warm start (the version load), ready
        wall, used = time.perf_counter() - t0, cpu() - c0
        models = app.state.components.training.store.current_unchecked()
        grown = rss() - r0
else:
    from pathlib import Path
    from backend.recommender import cf
    if sys.argv[1] == "load, torch imported":
        import torch  # as the embedding model (sentence-transformers) imports it
    r0, c0, t0 = rss(), cpu(), time.perf_counter()
    models = cf.load(Path(sys.argv[2]))
    wall, used, grown = time.perf_counter() - t0, cpu() - c0, rss() - r0
assert models is not None and models.next_item is not None, "no next-item model loaded"
t1 = time.perf_counter()
models.next_item([0, 1, 2])  # the first request's score
first = time.perf_counter() - t1
print(json.dumps({"wall": wall, "cpu": used, "rss_grown": grown, "rss": rss(),
                  "first_score_ms": first * 1000, "torch": "torch" in sys.modules}))
"""


def run(tree: Path, code: str, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=tree,
        env=os.environ | env | {"PYTHONPATH": str(tree)},
    )
    if done.returncode:
        raise RuntimeError(f"{tree}: {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True, help="label=path")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    trees = {label: Path(path).resolve() for label, path in (t.split("=", 1) for t in args.tree)}
    work = Path(tempfile.mkdtemp(prefix="next-item-load-"))
    envs: dict[str, dict[str, str]] = {}
    for label, tree in trees.items():
        data = work / label
        url = f"sqlite:///{data / 'shop.db'}"
        envs[label] = {"DATABASE_URL": url, "DATA_DIR": str(data), "REDIS_URL": ""}
        files = json.loads(run(tree, SETUP, str(data), url, str(args.items), env=envs[label]))
        sizes = ", ".join(f"{name} {size / 2**20:.2f} MB" for name, size in files.items())
        print(f"{label}: {sizes}")
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for kind in ("warm", "load", "load, torch imported"):
            for label, tree in trees.items():
                path = str(work / label / "models" / "cf-bench.npz")
                out = json.loads(run(tree, MEASURE, kind, path, env=envs[label]))
                results.setdefault((kind, label), []).append(out)
    print(
        f"\n{args.items:,} products, {args.rounds} rounds, medians "
        "(warm: the app's lifespan start to ready; load: cf.load alone; torch imported: "
        "before cf.load, as in a process whose embedding model has loaded)\n"
    )
    print("| | wall s | CPU s | RSS grown MB | RSS after MB | first score ms | torch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for (kind, label), rows in results.items():

        def med(key: str, rows: list[dict[str, float]] = rows) -> float:
            return statistics.median(r[key] for r in rows)

        torch = {bool(r["torch"]) for r in rows}
        print(
            f"| {kind} {label} | {med('wall'):.2f} | {med('cpu'):.2f} | {med('rss_grown'):.0f} "
            f"| {med('rss'):.0f} | {med('first_score_ms'):.1f} | {sorted(torch)} |"
        )


if __name__ == "__main__":
    main()
