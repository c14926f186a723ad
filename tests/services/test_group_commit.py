"""Group commit on a fake write: who is grouped with whom, and whose failure reaches whom.

The first write is held on an event until the others are queued behind it, so the groups
are known exactly (no sleeps, no timing)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from backend.services.group_commit import GroupCommit
from tests.waiting import wait_for


class Writer:
    """Records each group; holds the first one until ``release``; fails jobs named 'bad'."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.raise_on: str | None = None

    def __call__(self, jobs: Sequence[str]) -> list[str | BaseException]:
        self.groups.append(list(jobs))
        if len(self.groups) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.raise_on in jobs:
            raise OSError("disk full")
        return [ValueError(job) if job.startswith("bad") else job.upper() for job in jobs]


def queue_behind_first(
    commit: GroupCommit[str, str], writer: Writer, pool: ThreadPoolExecutor, jobs: list[str]
) -> tuple[Future[str], list[Future[str]]]:
    first = pool.submit(commit.submit, "first")
    assert writer.entered.wait(10)
    rest = []
    for n, job in enumerate(jobs, start=1):
        rest.append(pool.submit(commit.submit, job))
        # queued in this order
        wait_for(lambda n=n: commit.waiting >= n, f"{n} job(s) queued", 10, interval=0.001)
    writer.release.set()
    return first, rest


def test_requests_arriving_during_a_write_are_written_together_next():
    writer = Writer()
    commit: GroupCommit[str, str] = GroupCommit(writer, max_size=100)
    with ThreadPoolExecutor(4) as pool:
        first, rest = queue_behind_first(commit, writer, pool, ["a", "b", "c"])
        assert first.result(10) == "FIRST"
        assert [f.result(10) for f in rest] == ["A", "B", "C"]
    assert writer.groups == [["first"], ["a", "b", "c"]]
    assert commit.waiting == 0
    assert commit.submit("d") == "D"  # an idle writer starts at once
    assert writer.groups[-1] == ["d"]


def test_one_jobs_failure_is_its_own():
    writer = Writer()
    commit: GroupCommit[str, str] = GroupCommit(writer, max_size=100)
    with ThreadPoolExecutor(4) as pool:
        _, (good, bad, other) = queue_behind_first(commit, writer, pool, ["a", "bad", "c"])
        assert good.result(10) == "A" and other.result(10) == "C"
        with pytest.raises(ValueError, match="bad"):
            bad.result(10)
    assert writer.groups == [["first"], ["a", "bad", "c"]]


def test_a_failed_write_fails_its_group_only_and_the_next_group_is_written():
    writer = Writer()
    writer.raise_on = "a"
    commit: GroupCommit[str, str] = GroupCommit(writer, max_size=2)
    with ThreadPoolExecutor(4) as pool:
        first, (a, b, c) = queue_behind_first(commit, writer, pool, ["a", "b", "c"])
        assert first.result(10) == "FIRST"
        for failed in (a, b):
            with pytest.raises(OSError, match="disk full"):
                failed.result(10)
        assert c.result(10) == "C"
    assert writer.groups == [["first"], ["a", "b"], ["c"]]  # at most max_size per group


def test_a_job_larger_than_a_group_is_written_alone_never_split():
    writer = Writer()
    writer.entered.set()
    writer.release.set()
    commit: GroupCommit[str, str] = GroupCommit(writer, max_size=2, size=len)
    assert commit.submit("abcde") == "ABCDE"
    assert writer.groups == [["abcde"]]


def test_what_follows_a_write_runs_before_the_callers_are_answered():
    writer = Writer()
    writer.entered.set()
    writer.release.set()
    seen: list[tuple[list[str], list[object]]] = []
    commit: GroupCommit[str, str] = GroupCommit(
        writer, max_size=10, after=lambda jobs, outcomes: seen.append((list(jobs), list(outcomes)))
    )
    assert commit.submit("x") == "X"
    assert seen == [(["x"], ["X"])]
