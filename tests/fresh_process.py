"""Python code run by a fresh interpreter of this project: for what holds for a whole process
(what it imported, its thread limits, its garbage collector), which the test's own process,
with everything the suite imported, cannot show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def fresh_python(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    """``code``'s standard output; ``env`` is added to this process's environment."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        env=os.environ | {"PYTHONPATH": str(PROJECT_ROOT)} | (env or {}),
    ).stdout


def last_json(out: str) -> Any:
    """The JSON object ``fresh_python``'s code printed last."""
    return json.loads(out.strip().splitlines()[-1])
