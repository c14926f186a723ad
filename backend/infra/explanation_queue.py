"""The explanation queue: jobs for an LLM to explain a shopper's list, off the request path.

A job names what to explain (user, strategy, size, filters, the item ids) and with what (the
prompt versions and model, ``version``); the runner ranks again and drops a job whose
ranking has moved on. Jobs are deduplicated by (user, items, version), bounded in number,
and taken by priority: a shopper waiting on the page (``SHOPPER``) before lists prepared
after an event (``PREPARE``), oldest first within a priority.

``InProcessExplanationQueue`` is the embedded default (threads of the API take from it);
``RedisExplanationQueue`` keeps one Redis Stream per priority, read by ``shopwise worker``
through a consumer group, so jobs survive an API restart and any worker may take them.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

SHOPPER = 0  # the shopper is on the page now
PREPARE = 1  # prepared ahead, after the shopper's events
PRIORITIES = (SHOPPER, PREPARE)

Submitted = Literal["queued", "duplicate", "full"]


@dataclass(frozen=True, slots=True)
class ExplanationJob:
    user_id: uuid.UUID
    strategy: str
    top_n: int
    item_ids: tuple[uuid.UUID, ...]
    version: str  # the explainer's prompt versions and model
    priority: int = SHOPPER
    # The list's filters (category, min_price, max_price, in_stock); empty: none.
    filters: tuple[tuple[str, Any], ...] = ()
    created_at: float = field(default_factory=time.time)  # wall clock: shared by processes
    ticket: str = ""  # the queue's handle (a stream message id); empty in memory

    @property
    def key(self) -> str:
        """The dedup key: the same list for the same user with the same prompts and model."""
        raw = json.dumps([str(self.user_id), [str(i) for i in self.item_ids], self.version])
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.created_at)

    def to_json(self) -> str:
        return json.dumps(
            {
                "user_id": str(self.user_id),
                "strategy": self.strategy,
                "top_n": self.top_n,
                "item_ids": [str(i) for i in self.item_ids],
                "version": self.version,
                "priority": self.priority,
                "filters": [list(f) for f in self.filters],
                "created_at": self.created_at,
            }
        )

    @classmethod
    def from_json(cls, text: str, ticket: str = "") -> ExplanationJob:
        """Raises ``ValueError`` / ``KeyError`` / ``TypeError`` when malformed."""
        data = json.loads(text)
        return cls(
            user_id=uuid.UUID(data["user_id"]),
            strategy=str(data["strategy"]),
            top_n=int(data["top_n"]),
            item_ids=tuple(uuid.UUID(i) for i in data["item_ids"]),
            version=str(data["version"]),
            priority=int(data["priority"]),
            filters=tuple((str(k), v) for k, v in data.get("filters", [])),
            created_at=float(data["created_at"]),
            ticket=ticket,
        )


@dataclass(frozen=True, slots=True)
class QueueStatus:
    backend: str
    depth: int  # queued and running
    oldest_seconds: float  # age of the oldest of them (0 when empty)
    refused: int = 0  # submissions refused because the queue was full (this process)
    detail: str = ""


class ExplanationQueue(Protocol):
    def submit(self, job: ExplanationJob) -> Submitted: ...

    def take(self, consumer: str, timeout: float) -> list[ExplanationJob]:
        """The next job(s) by priority, waiting up to ``timeout`` seconds for one."""
        ...

    def done(self, job: ExplanationJob) -> None:
        """Finished or dropped: forget it (its key may be queued again)."""
        ...

    def status(self) -> QueueStatus: ...


class InProcessExplanationQueue:
    """A bounded priority queue in memory; a key stays taken while its job runs. A shopper
    asking for a list already queued as prepared-ahead moves that job up to their priority."""

    def __init__(self, max_jobs: int = 1000, clock: Callable[[], float] = time.time) -> None:
        self.max_jobs = max_jobs
        self._clock = clock
        self._heap: list[tuple[int, float, int, ExplanationJob]] = []
        self._keys: dict[str, float] = {}  # queued or running → created_at
        self._queued: dict[str, tuple[int, int]] = {}  # queued → its live heap entry
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self.refused = 0

    def submit(self, job: ExplanationJob) -> Submitted:
        with self._cond:
            if job.key in self._keys:
                entry = self._queued.get(job.key)
                if entry is not None and job.priority < entry[0]:
                    self._push(job)  # the older entry is skipped when it comes up
                return "duplicate"
            if len(self._keys) >= self.max_jobs:
                self.refused += 1
                return "full"
            self._keys[job.key] = job.created_at
            self._push(job)
            self._cond.notify()
        return "queued"

    def _push(self, job: ExplanationJob) -> None:
        """The caller holds the lock."""
        seq = next(self._seq)
        self._queued[job.key] = (job.priority, seq)
        heapq.heappush(self._heap, (job.priority, job.created_at, seq, job))

    def take(self, consumer: str, timeout: float) -> list[ExplanationJob]:
        with self._cond:
            if not self._queued:
                self._cond.wait(timeout)
            while self._heap:
                priority, _, seq, job = heapq.heappop(self._heap)
                if self._queued.get(job.key) == (priority, seq):
                    del self._queued[job.key]
                    return [job]
            return []

    def done(self, job: ExplanationJob) -> None:
        with self._cond:
            self._keys.pop(job.key, None)

    def status(self) -> QueueStatus:
        with self._cond:
            depth = len(self._keys)
            oldest = min(self._keys.values(), default=None)
        age = 0.0 if oldest is None else max(0.0, self._clock() - oldest)
        return QueueStatus("in-process", depth, age, self.refused)


# Claim the key, refuse past the bound, append: atomically, so two API processes cannot both
# queue the same list or overshoot the bound together.
_SUBMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'duplicate' end
if redis.call('XLEN', KEYS[2]) + redis.call('XLEN', KEYS[3]) >= tonumber(ARGV[1]) then
  return 'full'
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
redis.call('XADD', KEYS[2 + tonumber(ARGV[3])], '*', 'job', ARGV[4])
return 'queued'
"""


class RedisExplanationQueue:
    """One stream per priority and one consumer group; a job's entry is acked and deleted
    when done, so the streams' lengths are the queue's depth. The dedup key expires after
    ``key_ttl_seconds``, so a job lost with a dead worker cannot block its list for good;
    a worker takes over entries another left pending for ``claim_idle_ms``."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "",
        group: str = "shopwise-explainers",
        max_jobs: int = 1000,
        key_ttl_seconds: int = 900,
        claim_idle_ms: int = 600_000,
    ) -> None:
        self._client = client
        self.streams = tuple(f"{prefix}shopwise:explain:p{p}" for p in PRIORITIES)
        self._keys = f"{prefix}shopwise:explain:key:"
        self.group = group
        self.max_jobs = max_jobs
        self.key_ttl_seconds = key_ttl_seconds
        self.claim_idle_ms = claim_idle_ms
        self._submit = client.register_script(_SUBMIT)
        self._group_ready = False
        self.refused = 0

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisExplanationQueue:
        import redis

        client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=5.0, socket_connect_timeout=1.0
        )
        return cls(client, **kwargs)

    def submit(self, job: ExplanationJob) -> Submitted:
        result = self._submit(
            keys=[self._keys + job.key, *self.streams],
            args=[
                self.max_jobs,
                self.key_ttl_seconds,
                PRIORITIES.index(job.priority),
                job.to_json(),
            ],
        )
        if result == "full":
            self.refused += 1
        return cast(Submitted, str(result))

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        import redis

        for stream in self.streams:
            try:
                self._client.xgroup_create(stream, self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._group_ready = True

    def take(self, consumer: str, timeout: float) -> list[ExplanationJob]:
        """Entries a dead worker left first, then the most urgent stream that has any."""
        self._ensure_group()
        try:
            return self._take(consumer, timeout)
        except Exception as exc:
            if "NOGROUP" in str(exc):  # Redis lost its data: make the groups again
                self._group_ready = False
            raise

    def _take(self, consumer: str, timeout: float) -> list[ExplanationJob]:
        for stream in self.streams:
            _, claimed, *_ = self._client.xautoclaim(
                stream, self.group, consumer, self.claim_idle_ms, "0-0", count=1
            )
            jobs = self._parse(stream, [m for m in claimed if m and m[1]])
            if jobs:
                return jobs
        for stream in self.streams:  # the urgent stream first, without waiting
            reply = self._client.xreadgroup(self.group, consumer, {stream: ">"}, count=1)
            jobs = self._jobs(reply)
            if jobs:
                return jobs
        reply = self._client.xreadgroup(
            self.group,
            consumer,
            dict.fromkeys(self.streams, ">"),
            count=1,
            block=max(1, int(timeout * 1000)),
        )
        return sorted(self._jobs(reply), key=lambda j: j.priority)

    def _jobs(self, reply: Any) -> list[ExplanationJob]:
        jobs: list[ExplanationJob] = []
        for stream, messages in cast("list[tuple[str, list[tuple[str, Any]]]]", reply or []):
            jobs.extend(self._parse(stream, messages))
        return jobs

    def _parse(self, stream: str, messages: Sequence[Any]) -> list[ExplanationJob]:
        jobs: list[ExplanationJob] = []
        for message_id, fields in messages:
            ticket = f"{stream}|{message_id}"
            try:
                jobs.append(ExplanationJob.from_json(fields["job"], ticket=ticket))
            except (KeyError, TypeError, ValueError):
                log.error("dropping a malformed explanation job %s", message_id)
                self._remove(ticket, None)
        return jobs

    def done(self, job: ExplanationJob) -> None:
        self._remove(job.ticket, job.key)

    def _remove(self, ticket: str, key: str | None) -> None:
        stream, _, message_id = ticket.partition("|")
        pipe = self._client.pipeline(transaction=False)
        if message_id:
            pipe.xack(stream, self.group, message_id)
            pipe.xdel(stream, message_id)
        if key is not None:
            pipe.delete(self._keys + key)
        pipe.execute()

    def status(self) -> QueueStatus:
        pipe = self._client.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xlen(stream)
            pipe.xrange(stream, count=1)
        replies = pipe.execute()
        depth = sum(int(n) for n in replies[0::2])
        firsts = [str(r[0][0]) for r in replies[1::2] if r]
        oldest = min((int(i.split("-")[0]) for i in firsts), default=None)
        age = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)
        return QueueStatus("redis", depth, age, self.refused)
