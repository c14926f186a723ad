"""The committed demo data is exactly what ``seed_data/generate.py`` makes of its data files."""

from __future__ import annotations

import shutil
import subprocess
import sys

from backend.config import PROJECT_ROOT

SEED = PROJECT_ROOT / "seed_data"


def test_the_generator_reproduces_the_committed_files_byte_for_byte(tmp_path):
    for path in [*SEED.glob("*.py"), SEED / "catalog.json", SEED / "shoppers.json"]:
        shutil.copy(path, tmp_path / path.name)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "generate.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "products:     348" in done.stdout
    for name in ("products.json", "users.json", "interactions.json"):
        assert (tmp_path / name).read_bytes() == (SEED / name).read_bytes(), name
