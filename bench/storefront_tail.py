"""Where an open loop's tail comes from: its slowest seconds beside what the processes did.

``bench.storefront_load --tail-dir DIR`` records, during each open loop:
- every request's due time, latency and the app's own time (``Server-Timing``), and the
  client's own event-loop stalls (``storefront_traffic``);
- every 0.1 s the CPU time of each app process, of the PostgreSQL backends of its database,
  of Redis and of the whole machine (``CpuTimeline``);
- with ``--spy``, py-spy (all threads, idle ones too, with timestamps: chrome trace) on each
  app process (``spy``);
- each garbage collection of 2 ms or more in the app processes (``bench/probe``).

``summarise`` then lists the slowest seconds (per-second p99) and, for each, what ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import cpu_seconds, pct
from bench.storefront_traffic import Phase

PROBE_DIR = Path(__file__).parent / "probe"


def probe_env(env: dict[str, str], tail_dir: Path) -> dict[str, str]:
    """The app's environment with the GC probe loaded (``bench/probe/sitecustomize.py``)."""
    path = env.get("PYTHONPATH")
    return env | {
        "PYTHONPATH": f"{PROBE_DIR}{os.pathsep}{path}" if path else str(PROBE_DIR),
        "SHOPWISE_GC_PROBE": str(tail_dir),
    }


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return float(sum(fields) - idle), float(sum(fields))


def run_delay(pid: int) -> float:
    """Seconds the process's threads have spent runnable but waiting for a core (Linux
    schedstat): CPU competition, whoever it comes from."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total / 1e9


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += [int(child), *_children(int(child))]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def redis_pid() -> int | None:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == "redis-server":
                    return int(proc.name)
            except OSError:
                continue
    return None


@dataclass
class CpuTimeline:
    """Samples every ``every`` s: wall time, CPU seconds per process, machine busy/total."""

    pids: dict[int, str]  # pid -> label ("api 1234", "worker", "postgres", "redis")
    every: float = 0.1
    # (wall time, pid -> (CPU s, run-queue wait s), machine (busy, total) jiffies)
    samples: list[tuple[float, dict[int, tuple[float, float]], tuple[float, float]]] = field(
        default_factory=list
    )
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            cpu: dict[int, tuple[float, float]] = {}
            for pid in self.pids:
                try:
                    cpu[pid] = (cpu_seconds(pid), run_delay(pid))
                except (FileNotFoundError, ProcessLookupError):
                    pass
            self.samples.append((time.time(), cpu, _machine_busy()))
            self._stop.wait(self.every)

    def per_second(
        self, start: float
    ) -> tuple[dict[int, dict[str, float]], dict[int, dict[str, float]]]:
        """Second of the phase -> label -> cores used in it (1.0 = one core busy), and
        -> label -> ms its threads waited for a core."""
        out: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        waited: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for (t0, a, m0), (t1, b, m1) in zip(self.samples, self.samples[1:], strict=False):
            second = int(t0 - start)
            span = max(t1 - t0, 1e-6)
            for pid, label in self.pids.items():
                if pid in a and pid in b:
                    out[second][label] += (b[pid][0] - a[pid][0]) / span * (t1 - t0)
                    # (a thread that ended takes its wait with it: never below zero)
                    waited[second][label] += max(0.0, b[pid][1] - a[pid][1]) * 1000
            cores = os.cpu_count() or 1
            busy = (m1[0] - m0[0]) / max(m1[1] - m0[1], 1) * cores
            out[second]["machine"] += busy * (t1 - t0)
        return out, waited


def app_pids(roles: Iterable[tuple[str, int]]) -> dict[int, str]:
    """The app's processes by label: an API parent's children (uvicorn's workers) each."""
    pids: dict[int, str] = {}
    for role, pid in roles:
        children = _children(pid)
        if role == "api" and children:
            for child in children:
                pids[child] = f"api {child}"
        else:
            pids[pid] = role
    return pids


def spy(
    pids: dict[int, str], seconds: float, tail_dir: Path, tag: str
) -> list[subprocess.Popen[bytes]]:
    """py-spy on each process, every thread (idle ones too, to see what each waits in), with
    timestamps (chrome trace; its clock starts at the recording's start)."""
    procs: list[subprocess.Popen[bytes]] = []
    exe = str(Path(sys.executable).with_name("py-spy"))
    for pid, label in pids.items():
        if label in ("postgres", "redis"):
            continue
        out = tail_dir / f"spy-{tag}-{pid}.json"
        (tail_dir / f"spy-{tag}-{pid}.start").write_text(str(time.time()))
        procs.append(
            subprocess.Popen(
                [
                    exe,
                    "record",
                    "-f",
                    "chrometrace",
                    "--idle",
                    "--nonblocking",  # the process is not paused for a sample
                    "-r",
                    "25",  # coarse, but light: 100 Hz on four processes made the tail
                    "-d",
                    str(int(seconds)),
                    "-p",
                    str(pid),
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        )
    return procs


# Leaves of a thread that waits (not on the CPU, not holding the GIL).
IDLE_LEAVES = ("wait", "select", "sleep", "get", "_worker", "run_until_complete", "run_forever",
               "accept", "_recv", "recv", "read", "poll", "_wait_for_tstate_lock", "join",
               "wait_c", "Runner.run", "_read_from_socket", "xread", "block")  # fmt: skip


def spy_seconds(path: Path, start: float) -> dict[int, dict[str, float]]:
    """Second of the phase -> 'thread: frame' -> ms on a non-idle stack (leaf frame, with the
    nearest of our frames above it)."""
    events = json.loads(path.read_text())
    zero = float(path.with_suffix(".start").read_text())
    stacks: dict[int, list[tuple[str, str]]] = defaultdict(list)
    last: dict[int, float] = {}
    out: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    names: dict[int, str] = {}
    for e in sorted(events, key=lambda e: e["ts"]):
        tid = e["tid"]
        ts = zero + e["ts"] / 1e6
        stack = stacks[tid]
        if tid in last and stack:
            _attribute(out, stack, last[tid], ts, start, names.get(tid) or str(tid))
        last[tid] = ts
        frame = (e["name"], str(e.get("args", {}).get("filename", "")))
        if e["ph"] == "B":
            stack.append(frame)
            if len(stack) == 1 or stack[0][0] == "Thread._bootstrap":
                names[tid] = _thread_name(stack)
        elif stack:
            stack.pop()
    return out


def _thread_name(stack: list[tuple[str, str]]) -> str:
    for name, file in stack[:6]:
        if "backend" in file or "uvicorn" in file or "concurrent" in file:
            return name
    return stack[-1][0]


def _attribute(
    out: dict[int, dict[str, float]],
    stack: list[tuple[str, str]],
    t0: float,
    t1: float,
    start: float,
    thread: str,
) -> None:
    leaf = stack[-1][0]
    if leaf in IDLE_LEAVES or leaf.split(".")[-1] in IDLE_LEAVES:
        return
    ours = next((n for n, f in reversed(stack) if "/backend/" in f), "")
    label = f"{leaf} < {ours}" if ours and ours != leaf else leaf
    t = t0
    while t < t1:
        second = int(t - start)
        end = min(t1, start + second + 1)
        out[second][label] += (end - t) * 1000
        t = end


def gc_pauses(tail_dir: Path, pids: dict[int, str], start: float) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for pid, label in pids.items():
        path = tail_dir / f"gc-{pid}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            gc = json.loads(line)
            second = int(gc["t"] - start)
            cpu = gc.get("cpu_ms")
            out[second].append(
                f"{label} gen{gc['gen']} {gc['ms']:.0f} ms"
                + (f" ({cpu:.0f} ms CPU)" if cpu is not None else "")
            )
    return out


def summarise(
    phase: Phase,
    cpu: CpuTimeline | None,
    tail_dir: Path,
    pids: dict[int, str],
    spy_tag: str | None = None,
    worst: int = 5,
) -> str:
    """Per-second p99 of the phase, and what the processes did in its slowest seconds."""
    by_second: dict[int, list[float]] = defaultdict(list)
    app_by_second: dict[int, list[float]] = defaultdict(list)
    shed: Counter[int] = Counter()
    for due, _kind, status, ms, app_ms in phase.timeline:
        second = int(due)
        if status == 503:
            shed[second] += 1
        if 200 <= status < 300:
            by_second[second].append(ms)
            if app_ms is not None:
                app_by_second[second].append(app_ms)
    seconds = sorted(by_second)
    p99 = {s: pct(by_second[s], 99) for s in seconds}
    lines = [f"{phase.target} ({phase.loop}): p99 per second (ms): "
             + " ".join(f"{p99[s]:.0f}" for s in seconds)]  # fmt: skip
    cores, waited = cpu.per_second(phase.started) if cpu else ({}, {})
    gcs = gc_pauses(tail_dir, pids, phase.started)
    stalls: dict[int, list[float]] = defaultdict(list)
    for t, ms in phase.client_stalls:
        stalls[int(t)].append(ms)
    spied: dict[str, dict[int, dict[str, float]]] = {}
    if spy_tag is not None:
        for pid, label in pids.items():
            path = tail_dir / f"spy-{spy_tag}-{pid}.json"
            if path.exists():
                try:
                    spied[label] = spy_seconds(path, phase.started)
                except (ValueError, OSError) as exc:
                    lines.append(f"(py-spy trace of {label} unreadable: {exc})")
    by_kind: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for _due, kind, status, ms, app_ms in phase.timeline:
        if 200 <= status < 300:
            by_kind[kind][0].append(ms)
            if app_ms is not None:
                by_kind[kind][1].append(app_ms)
    lines.append("- whole phase, p99 client / the app's own (Server-Timing): " + "; ".join(
        f"{kind} {pct(total, 99):.0f} / {pct(app, 99):.0f} ms"
        for kind, (total, app) in sorted(by_kind.items())
    ) + f"; client stalls over 10 ms: {len(phase.client_stalls)}, "
        f"{sum(ms for _, ms in phase.client_stalls):.0f} ms in all; the client's GC pauses "
        f"of 2 ms or more: {len(phase.client_gc)}, longest "
        f"{max((ms for *_, ms in phase.client_gc), default=0):.0f} ms")  # fmt: skip
    if cores:
        used: Counter[str] = Counter()
        wait: Counter[str] = Counter()
        for second in cores:
            used.update(cores[second])
            wait.update(waited[second])
        n = max(len(cores), 1)
        lines.append("- whole phase, cores used (waited for a core, ms/s): " + ", ".join(
            f"{k} {v / n:.2f} ({wait[k] / n:.0f})" for k, v in used.most_common()
        ))  # fmt: skip
    collections: dict[str, list[float]] = defaultdict(list)
    for second, pauses in gcs.items():
        if 0 <= second <= phase.seconds:
            for pause in pauses:
                label, _, rest = pause.partition(" gen")
                if rest.startswith("2"):
                    collections[label].append(float(rest.split("(")[-1].split(" ms CPU")[0]))
    if collections:
        lines.append("- whole phase, full collections (gen2): " + "; ".join(
            f"{label} {len(cpus)}, {sum(cpus):.0f} ms CPU" for label, cpus in collections.items()
        ))  # fmt: skip
    ranked = sorted(seconds, key=lambda s: p99[s], reverse=True)
    for s in ranked[:worst] + ranked[-1:]:
        app = app_by_second.get(s, [])
        lines.append(
            f"- second {s}: p99 {p99[s]:.0f} ms, max {max(by_second[s]):.0f} ms, "
            f"{len(by_second[s])} answered, {shed[s]} shed; app's own p99 "
            f"{pct(app, 99):.0f} ms, max {max(app, default=0):.0f} ms; client stalls "
            f"{', '.join(f'{ms:.0f}' for ms in stalls.get(s, [])) or 'none'}"
        )
        if s in cores:
            lines.append("  - cores: " + ", ".join(
                f"{k} {v:.2f}" for k, v in sorted(cores[s].items(), key=lambda kv: -kv[1])
            ))  # fmt: skip
            lines.append("  - waited for a core (ms): " + ", ".join(
                f"{k} {v:.0f}" for k, v in sorted(waited[s].items(), key=lambda kv: -kv[1])
                if k != "redis" or v >= 1
            ))  # fmt: skip
        if gcs.get(s):
            lines.append("  - GC: " + "; ".join(gcs[s]))
        for label, seconds_frames in spied.items():
            frames = sorted(seconds_frames.get(s, {}).items(), key=lambda kv: -kv[1])[:6]
            if frames:
                top = "; ".join(f"`{f}` {ms:.0f}" for f, ms in frames)
                lines.append(f"  - {label} on CPU (ms): {top}")
    return "\n".join(lines)
