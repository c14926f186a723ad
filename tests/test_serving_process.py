"""What a serving process sets for itself: BLAS and OpenMP on one thread (backend/infra/blas.py
says why), and what its warm start loaded frozen out of the garbage collector (backend/main.py).

Each check runs in a process of its own: the limit holds for the rest of a process, and the
test's own process must keep whatever it had.
"""

from __future__ import annotations

from pathlib import Path

from backend.main import YOUNG_GENERATION_THRESHOLD
from tests.fresh_process import fresh_python

# The most threads any BLAS or OpenMP library loaded in the process may use.
THREADS = (
    "from threadpoolctl import threadpool_info; "
    "print(max(i['num_threads'] for i in threadpool_info()))"
)


def run(code: str, tmp_path: Path) -> list[int]:
    out = fresh_python(
        code,
        env={
            # What an unlimited process has on this 2-core machine.
            "OPENBLAS_NUM_THREADS": "2",
            "OMP_NUM_THREADS": "2",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}",
            "DATA_DIR": str(tmp_path / "data"),
            "REDIS_URL": "",
        },
    )
    return [int(line) for line in out.split() if line.isdigit()]


def test_the_app_limits_blas_to_one_thread_when_it_starts(tmp_path):
    run("from backend.cli import app; app(['migrate'], standalone_mode=False)", tmp_path)
    code = (
        "import numpy\n"
        f"def threads():\n    {THREADS}\n"
        "from fastapi.testclient import TestClient\n"
        "from backend.main import create_app\n"
        "threads()\n"
        "with TestClient(create_app(warm_in_background=False)):\n"
        "    threads()\n"
        # Loaded after the start: scipy's own OpenBLAS (EASE), torch's OpenMP (SASRec).
        "    import scipy.linalg, torch\n"
        "    scipy.linalg.inv(numpy.eye(300))\n"
        "    threads()\n"
    )
    assert run(code, tmp_path) == [2, 1, 1]


def test_batch_commands_keep_every_blas_thread(tmp_path):
    """Importing the app and the worker leaves BLAS alone: only starting them limits it."""
    code = f"import numpy, backend.main, backend.cli.worker\n{THREADS}\n"
    assert run(code, tmp_path) == [2]


def test_the_served_app_freezes_what_its_warm_start_loaded(tmp_path):
    run("from backend.cli import app; app(['migrate'], standalone_mode=False)", tmp_path)
    code = (
        "import gc\n"
        "from fastapi.testclient import TestClient\n"
        "from backend.main import create_app\n"
        "print(gc.get_freeze_count(), gc.get_threshold()[0])\n"
        "with TestClient(create_app(warm_in_background=False)):\n"
        "    print(gc.get_freeze_count(), gc.get_threshold()[0])\n"
    )
    before, default_young, served, young = run(code, tmp_path)
    assert before == 0 and served > 10_000
    # and the young generation sized for a request's allocations, only once served
    assert default_young == 700 and young == YOUNG_GENERATION_THRESHOLD
