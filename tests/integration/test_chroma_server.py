"""The vector store in server mode: a real ``chroma run`` on loopback, as in docker-compose.

Uses only the vector-store module's public API (``VectorStore.open(url=...)``): the same
code path the API takes when CHROMA_URL is set. The client runs in a subprocess
(``chroma_probe``) because chromadb's HTTP client leaks sockets that would fail a later test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.config import PROJECT_ROOT
from tests.conftest import service_unavailable
from tests.waiting import free_port


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    executable = shutil.which("chroma") or str(PROJECT_ROOT / ".venv" / "bin" / "chroma")
    if not Path(executable).exists():
        service_unavailable("chroma", FileNotFoundError("the chroma CLI is not installed"))
    port = free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [executable, "run", "--path", str(tmp_path / "chroma"), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                service_unavailable("chroma server", RuntimeError("did not start"))
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_vector_store_round_trip_against_a_chroma_server(chroma_url):
    probe = subprocess.run(
        [sys.executable, "-m", "tests.integration.chroma_probe", chroma_url],
        cwd=PROJECT_ROOT, capture_output=True, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr.decode()[-2000:]
    result = json.loads(probe.stdout.decode().strip().splitlines()[-1])
    assert result["count"] == 3
    assert result["nearest"] == result["expected_nearest"]
    assert result["top_similarity"] == pytest.approx(1.0, abs=1e-4)
    assert result["kitchen"] == result["expected_kitchen"]
    assert result["replica_count"] == 2
