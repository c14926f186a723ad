"""The processes a browser test drives: the API and Streamlit pages on free loopback ports,
each logging to a file, stopped at the end."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from backend.config import PROJECT_ROOT
from tests.conftest import IN_CI
from tests.waiting import free_port

STREAMLIT_LOOK = ["--client.toolbarMode", "minimal", "--theme.primaryColor", "#0f766e"]


def missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; the browser test is required under CI=true (make test installs it)")
    pytest.skip(reason)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = log.read_text(errors="replace")
            raise RuntimeError(f"{proc.args} exited early:\n{out[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer in {seconds:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class Stack:
    """The API on loopback over a seeded SQLite shop, and what a page needs to reach it."""

    api_url: str
    env: dict[str, str]
    data: Path
    processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = (self.data / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append((proc, log))
        return proc

    def streamlit(self, page: str) -> str:
        """Serve ``page`` (a path under the project) on a free port; returns its URL."""
        port = free_port()
        name = Path(page).stem
        proc = self.start(
            name,
            [str(Path(sys.executable).parent / "streamlit"), "run", page, "--server.headless",
             "true", "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", *STREAMLIT_LOOK],
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_stcore/health", proc, self.data / f"{name}.log")
        return url
