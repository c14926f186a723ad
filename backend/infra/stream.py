"""Event stream adapters: accepted events travel to the worker through one of two seams.

``RedisEventStream`` appends to a Redis Stream read by ``shopwise worker`` processes through a
consumer group (acks, and XAUTOCLAIM of messages a dead worker left pending).
``InProcessEventStream`` is the embedded default: a bounded queue drained by a background
thread in the API process, so a single machine needs no extra server.

The database is the truth: a stream only carries the news that an interaction was stored,
so a message lost to an outage costs freshness of derived data, never an event. The outbox
(``infra.outbox``) makes the news itself survive a process dying before it was sent.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from backend.db.models import as_utc, utcnow

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """What the worker needs to know about a stored interaction."""

    interaction_id: uuid.UUID
    user_id: uuid.UUID
    action: str
    product_id: uuid.UUID | None
    created_at: datetime

    def to_fields(self) -> dict[str, str]:
        return {
            "interaction_id": str(self.interaction_id),
            "user_id": str(self.user_id),
            "action": self.action,
            "product_id": str(self.product_id) if self.product_id else "",
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> StreamEvent:
        """Parse a stream message; raises ``ValueError`` (or ``KeyError``) when malformed."""
        product = fields.get("product_id") or ""
        return cls(
            interaction_id=uuid.UUID(fields["interaction_id"]),
            user_id=uuid.UUID(fields["user_id"]),
            action=fields["action"],
            product_id=uuid.UUID(product) if product else None,
            created_at=datetime.fromisoformat(fields["created_at"]),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed to a worker; ``event`` is None when the payload is malformed."""

    message_id: str
    event: StreamEvent | None
    fields: Mapping[str, str]

    @classmethod
    def parse(cls, message_id: str, fields: Mapping[str, str]) -> Delivery:
        try:
            event: StreamEvent | None = StreamEvent.from_fields(fields)
        except (KeyError, ValueError):
            event = None
        return cls(message_id=message_id, event=event, fields=dict(fields))


@dataclass(frozen=True, slots=True)
class StreamStatus:
    backend: str
    status: str  # "ok" | "degraded"
    detail: str = ""


class EventStream(Protocol):
    # True when a published message survives this process (Redis); False for a queue in
    # memory, whose events leave the outbox only once processed.
    durable: bool

    def publish(self, events: Sequence[StreamEvent]) -> bool:
        """Hand the events over; True when all of them reached the stream now."""
        ...

    def lag_seconds(self) -> float:
        """Age of the oldest event not yet processed."""
        ...

    def status(self) -> StreamStatus: ...


class InProcessEventStream:
    """A bounded in-memory queue. When full, the newest news is dropped (and counted): the
    events themselves are already stored, only their derived data waits for the next one."""

    durable = False

    def __init__(self, maxsize: int = 100_000) -> None:
        self._queue: queue.Queue[StreamEvent] = queue.Queue(maxsize=maxsize)
        self.dropped = 0
        self._in_flight: set[uuid.UUID] = set()  # queued or being processed
        self._lock = threading.Lock()

    def publish(self, events: Sequence[StreamEvent]) -> bool:
        delivered = True
        for event in events:
            try:
                with self._lock:
                    self._in_flight.add(event.interaction_id)
                self._queue.put_nowait(event)
            except queue.Full:
                with self._lock:
                    self._in_flight.discard(event.interaction_id)
                delivered = False
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 10_000 == 0:
                    log.warning("in-process event queue full; %d dropped so far", self.dropped)
        return delivered

    def in_flight(self) -> frozenset[uuid.UUID]:
        """Events this process holds (queued or being processed): a sweep skips them."""
        with self._lock:
            return frozenset(self._in_flight)

    def finished(self, events: Sequence[StreamEvent]) -> None:
        """The worker is done with these (processed or given up: the outbox keeps the latter)."""
        with self._lock:
            self._in_flight.difference_update(e.interaction_id for e in events)
        self.task_done(len(events))

    def take(self, max_items: int, timeout: float) -> list[StreamEvent]:
        """Wait up to ``timeout`` for one event, then take whatever else is already queued."""
        try:
            items = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(items) < max_items:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def task_done(self, n: int) -> None:
        for _ in range(n):
            self._queue.task_done()

    def join(self) -> None:
        """Block until every published event was handled (tests, orderly shutdown)."""
        self._queue.join()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def lag_seconds(self) -> float:
        """Age of the oldest queued event (0 when the worker has caught up)."""
        with self._queue.mutex:
            oldest = self._queue.queue[0].created_at if self._queue.queue else None
        return _age(oldest)

    def status(self) -> StreamStatus:
        detail = f"in-process queue, {self.depth} waiting"
        if self.dropped:
            detail += f", {self.dropped} dropped"
        return StreamStatus(backend="memory", status="ok", detail=detail)


class RedisEventStream:
    """Redis Streams with one consumer group shared by every worker.

    Publishing never fails a request: while Redis is unreachable, messages wait in a bounded
    buffer and go out with the next successful publish (or health check).
    """

    durable = True

    def __init__(
        self,
        client: redis.Redis,
        *,
        stream: str,
        group: str,
        maxlen: int = 1_000_000,
        retry_after_seconds: float = 1.0,
        max_buffered: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.stream = stream
        self.group = group
        self._maxlen = maxlen
        self._retry_after = retry_after_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._buffer: deque[dict[str, str]] = deque(maxlen=max_buffered)
        self._down_until = 0.0
        self._last_error = ""
        self._group_ready = False
        self._claim_cursor = "0-0"

    @classmethod
    def from_url(
        cls, url: str, *, stream: str, group: str, timeout_seconds: float = 5.0, **kwargs: Any
    ) -> RedisEventStream:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=min(timeout_seconds, 1.0),
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
        )
        return cls(client, stream=stream, group=group, **kwargs)

    # -- producer side --------------------------------------------------------------------

    def publish(self, events: Sequence[StreamEvent]) -> bool:
        with self._lock:
            self._buffer.extend(e.to_fields() for e in events)
        return self._flush()

    def _flush(self) -> bool:
        if self._clock() < self._down_until:
            return False
        with self._lock:
            batch = list(self._buffer)
            if not batch:
                return True
            try:
                self._ensure_group()
                pipe = self._client.pipeline(transaction=False)
                for fields in batch:
                    pipe.xadd(self.stream, fields, maxlen=self._maxlen, approximate=True)  # type: ignore[arg-type]
                pipe.execute()
            except Exception as exc:  # keep the batch; the next publish retries it
                # Redis may come back empty: create the group again before the next XADD.
                self._group_ready = False
                first = not self._last_error
                self._last_error = type(exc).__name__
                self._down_until = self._clock() + self._retry_after
                if first:
                    log.warning("event stream unavailable (%s); buffering messages", exc)
                return False
            for _ in batch:
                self._buffer.popleft()
            if self._last_error:
                log.warning("event stream is back; sent %d buffered message(s)", len(batch))
                self._last_error = ""
        return True

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # -- consumer side --------------------------------------------------------------------

    @property
    def generation_key(self) -> str:
        return f"{self.stream}:group-created"

    def _ensure_group(self) -> None:
        """Create the group at the stream's start, so nothing published earlier is skipped."""
        if self._group_ready:
            return
        import redis

        try:
            self._client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        else:
            # A new group: the first start, or Redis lost its data (a restart without
            # persistence, a flush). Workers watch this mark to replay what may be lost.
            self._client.set(self.generation_key, str(time.time_ns()))
        self._group_ready = True
        self._claim_cursor = "0-0"

    def _grouped(self, command: Callable[[], T]) -> T:
        """Run a consumer-group command; if the stream or the group is gone (NOGROUP: Redis
        restarted empty, or the key was deleted), create them again and run it once more."""
        self._ensure_group()
        try:
            return command()
        except Exception as exc:
            if "NOGROUP" not in str(exc) and "no such key" not in str(exc):  # XINFO's way
                raise
            log.warning(
                "stream %s or its group %s is missing (Redis lost its data?); recreating them",
                self.stream,
                self.group,
            )
            self._group_ready = False
            self._ensure_group()
            return command()

    def group_generation(self) -> str | None:
        """Changes whenever the group is created anew (see ``_ensure_group``)."""
        self._ensure_group()
        value = self._client.get(self.generation_key)
        return str(value) if value is not None else None

    def read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """New messages for this consumer (they stay pending until acked)."""
        reply = self._grouped(
            lambda: self._client.xreadgroup(
                self.group, consumer, {self.stream: ">"}, count=count, block=block_ms
            )
        )
        deliveries: list[Delivery] = []
        for _stream, messages in cast(
            "list[tuple[str, list[tuple[str, dict[str, str]]]]]", reply or []
        ):
            deliveries.extend(Delivery.parse(mid, fields) for mid, fields in messages)
        return deliveries

    def claim(self, consumer: str, min_idle_ms: int, count: int) -> list[Delivery]:
        """Take over messages pending longer than ``min_idle_ms`` (their worker died)."""
        reply = self._grouped(
            lambda: self._client.xautoclaim(
                self.stream, self.group, consumer, min_idle_ms, self._claim_cursor, count=count
            )
        )
        self._claim_cursor = str(reply[0])
        return [Delivery.parse(mid, fields) for mid, fields in reply[1] if fields is not None]

    def own_pending(self, consumer: str, count: int) -> list[Delivery]:
        """Messages delivered to this consumer name and not acked (a restart under the same
        name picks up where it stopped)."""
        reply = self._grouped(
            lambda: self._client.xreadgroup(self.group, consumer, {self.stream: "0"}, count=count)
        )
        out: list[Delivery] = []
        for _stream, messages in cast("list[tuple[str, list[tuple[str, Any]]]]", reply or []):
            out.extend(Delivery.parse(mid, fields) for mid, fields in messages if fields)
        return out

    def ack(self, message_ids: Sequence[str]) -> None:
        if message_ids:
            self._grouped(lambda: self._client.xack(self.stream, self.group, *message_ids))

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Park a message that can never be processed, so it stops blocking the group."""
        fields = {**delivery.fields, "message_id": delivery.message_id, "reason": reason}
        self._client.xadd(f"{self.stream}:dead", fields, maxlen=100_000, approximate=True)  # type: ignore[arg-type]
        self.ack([delivery.message_id])

    def pending_count(self) -> int:
        info = self._grouped(lambda: self._client.xpending(self.stream, self.group))
        return int(info.get("pending", 0))

    def lag_seconds(self) -> float:
        """Age of the oldest message not yet acked: pending with a worker, or not yet
        delivered to any. A stream id starts with the milliseconds of its XADD."""
        oldest: list[str] = []
        pending = self._grouped(lambda: self._client.xpending(self.stream, self.group))
        if pending.get("pending") and pending.get("min"):
            oldest.append(str(pending["min"]))
        last = self.group_info().get("last-delivered-id") or "0-0"
        undelivered = self._client.xrange(self.stream, min=f"({last}", count=1)
        if undelivered:
            oldest.append(str(undelivered[0][0]))
        if not oldest:
            return 0.0
        millis = min(int(message_id.split("-")[0]) for message_id in oldest)
        return max(0.0, time.time() - millis / 1000)

    def group_info(self) -> dict[str, Any]:
        for group in self._grouped(lambda: self._client.xinfo_groups(self.stream)):
            if group.get("name") == self.group:
                return dict(group)
        self._group_ready = False  # the stream is there but not our group: make it again
        return {}

    def consumers(self) -> list[dict[str, Any]]:
        return list(self._grouped(lambda: self._client.xinfo_consumers(self.stream, self.group)))

    def status(self) -> StreamStatus:
        self._flush()
        try:
            group = self.group_info()
        except Exception as exc:
            self._group_ready = False
            return StreamStatus(
                backend="redis",
                status="degraded",
                detail=(
                    f"Redis unreachable ({type(exc).__name__}): events are stored but not "
                    f"delivered to workers; {self.buffered} message(s) buffered, the rest wait "
                    "in the outbox"
                ),
            )
        detail = (
            f"stream {self.stream}: {group.get('pending', 0)} pending, "
            f"lag {group.get('lag', '?')}, {group.get('consumers', 0)} consumer(s)"
        )
        if self.buffered:
            # Reachable again but not yet delivered: still degraded until the buffer drains.
            detail += f", {self.buffered} buffered (not yet sent)"
            return StreamStatus(backend="redis", status="degraded", detail=detail)
        return StreamStatus(backend="redis", status="ok", detail=detail)


def _age(created_at: datetime | None) -> float:
    if created_at is None:
        return 0.0
    return max(0.0, (utcnow() - as_utc(created_at)).total_seconds())
