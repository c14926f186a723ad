"""The embedded event worker as a child process of the API, beside it on another core.

Embedded mode is one API process, and its worker thread held the GIL for about a quarter of
the process's CPU in the storefront bench's open loop (the per-event transaction and the
precomputes), queueing the requests behind it. ``WorkerProcess`` runs the same
``EventProcessor`` in a child the API starts, restarts and stops; nothing new is installed.

The hand-off is the ``event_outbox`` table: ``track()`` writes a row per accepted event in the
transaction that stores it, and the worker removes the row in the transaction that counts the
event into its ledger (``processed_event``). The child reads the outbox, oldest first, so an
event is processed once whatever dies when: a child killed mid-batch leaves its rows, which
its successor reads; a repeat is caught by the ledger. A byte on a pipe (the child's stdin)
wakes the child when events arrive; its end of file tells the child that the API is gone.

The child (``backend.jobs.worker_child``) reports its counters as JSON lines on a second
pipe, for /health.

What the worker produces reaches the API through SQLite, as in server mode: precomputed
lists (checked against the profile version), retrained models (loaded when a newer version
is saved) and shopper segments. The response cache lives in the API's memory and only the
tracker invalidates it, in the API. The child cannot see it: it asks the impression log
whether a request has answered the shopper since their event (``AnsweredSince``), and
queues no explanations (their queue is the API's; the shopper's next visit queues them).

Opt-in (``EVENT_WORKER_PROCESS=1``), a served app without Redis only.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func
from sqlmodel import select as sql_select

from backend.db import crud
from backend.db.models import EventOutbox, RecAnalytics, as_utc, utcnow
from backend.infra.outbox import stream_event
from backend.infra.stream import StreamEvent, StreamStatus
from backend.jobs.events import EventProcessor
from backend.jobs.worker import GATHER_SECONDS

if TYPE_CHECKING:
    from backend.config import Settings

log = logging.getLogger(__name__)

SETTINGS_ENV = "SHOPWISE_WORKER_SETTINGS"  # the API's settings, as JSON, for the child


# --- the child ------------------------------------------------------------------------------


class AnsweredSince:
    """Whether the API has shown a shopper an answer since their latest event was stored:
    their impression log (written within ``IMPRESSION_FLUSH_SECONDS``, less than the
    precompute's debounce). The API's response cache, which it checks in-process, is out of
    the child's sight; without this the child precomputed 2.7x the lists the thread did
    (1,019 vs 372 in a 20 s open loop), each a turn on SQLite's writer.

    The child's processor asks it (``EventProcessor.answered``, given at the composition
    root); ``OutboxWorker`` tells it when each event it reads was stored.
    """

    def __init__(self, db: Engine) -> None:
        self.db = db
        self._stored_at: dict[uuid.UUID, datetime] = {}  # each shopper's latest event

    def stored(self, user_id: uuid.UUID, at: datetime) -> None:
        if at > self._stored_at.get(user_id, at - timedelta(1)):
            self._stored_at[user_id] = at

    def __call__(self, user_id: uuid.UUID) -> bool:
        """Asked once per list that came due: the shopper's next events are seen anew."""
        since = self._stored_at.pop(user_id, None)
        if since is None:
            return False
        with Session(self.db) as session:
            shown = session.exec(
                sql_select(RecAnalytics.id)
                .where(col(RecAnalytics.user_id) == user_id)
                .where(col(RecAnalytics.created_at) >= since)
                .limit(1)
            ).first()
        return shown is not None


class OutboxWorker:
    """The child's loop: process the outbox's rows, oldest first, until the wake pipe closes.

    ``gather_seconds``: after a wake, wait this long for more events, so a burst becomes
    one transaction (fewer turns on SQLite's one writer, which the API's requests share).
    Off the API's GIL the wait costs the requests nothing; it delays derived data only.
    """

    def __init__(
        self,
        *,
        db: Engine,
        processor: EventProcessor,
        wake_fd: int,
        report: Callable[[dict[str, Any]], None],
        answered: AnsweredSince,
        batch_size: int = 200,
        gather_seconds: float = GATHER_SECONDS,
        idle_poll_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.processor = processor
        self.answered = answered  # told when each shopper's events were stored
        self.wake_fd = wake_fd
        self.report = report
        self.batch_size = batch_size
        self.gather_seconds = gather_seconds
        self.idle_poll_seconds = idle_poll_seconds  # a lost wake costs at most this
        self.processed = 0
        self.failed = 0
        self.last_error = ""
        self.stop = threading.Event()
        self._last_report = 0.0

    def pending(self) -> list[StreamEvent]:
        with Session(self.db) as session:
            rows = crud.claim_outbox(
                session=session,
                before=utcnow() + timedelta(days=1),  # every row: this is their only reader
                after=None,
                limit=self.batch_size,
            )
            for outbox, interaction in rows:
                self.answered.stored(interaction.user_id, as_utc(outbox.stored_at))
            return [stream_event(interaction) for _, interaction in rows]

    def run(self) -> None:
        backoff = 0.2
        while not self.stop.is_set():
            try:
                events = self.pending()
                if events:
                    self.processor.process(events)  # removes their outbox rows
                    self.processed += len(events)
                    backoff = 0.2
                    self._report()
                    if len(events) == self.batch_size:
                        continue  # more waiting
                self.processor.flush_due()
            except Exception as exc:  # the rows stay in the outbox: tried again after a pause
                self.failed += 1
                self.last_error = type(exc).__name__
                log.exception("worker process step failed; retrying in %.1f s", backoff)
                self._report(force=True)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 15.0)
                continue
            self._report()
            self._wait()
        try:  # stopping: what is stored and the lists still waiting
            events = self.pending()
            if events:
                self.processor.process(events)
                self.processed += len(events)
            self.processor.flush_due(everything=True)
        except Exception:
            log.exception("worker process: final batch failed (its rows stay in the outbox)")
        self._report(force=True)

    def _wait(self) -> None:
        due_in = self.processor.next_due_in()
        timeout = self.idle_poll_seconds if due_in is None else min(self.idle_poll_seconds, due_in)
        readable, _, _ = select.select([self.wake_fd], [], [], max(timeout, 0.0))
        if not readable:
            return
        if not os.read(self.wake_fd, 65536):  # end of file: the API closed it or died
            self.stop.set()
            return
        self.stop.wait(self.gather_seconds)
        while select.select([self.wake_fd], [], [], 0)[0]:  # the wakes of the gathered events
            if not os.read(self.wake_fd, 65536):
                self.stop.set()
                return

    def _report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < 1.0:
            return
        self._last_report = now
        self.report(
            {
                "processed": self.processed,
                "failed": self.failed,
                "last_error": self.last_error,
                "precompute": self.processor.precompute_status(),
            }
        )


def settings_json(settings: Settings) -> str:
    """The API's settings for its child, secrets included (the child's environment is the
    API's own anyway): tests and callers build settings in code, not only from the env."""

    def plain(value: object) -> object:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        return str(value)

    fields = {name: getattr(settings, name) for name in type(settings).model_fields}
    return json.dumps(fields, default=plain)


# --- the API's side -------------------------------------------------------------------------


class WorkerProcess:
    """Starts the child, restarts it when it dies, wakes it on new events, stops it.

    Duck-typed like ``InProcessWorker`` for the app (``start``, ``stop``, ``status``,
    ``running``); ``stream`` is the tracker's event stream (``OutboxWake``).
    """

    def __init__(
        self,
        *,
        db: Engine,
        processor: EventProcessor,
        settings: Settings | None = None,
        command: Sequence[str] | None = None,
        restart_seconds: float = 0.5,
        max_restart_seconds: float = 10.0,
    ) -> None:
        self.db = db
        self.processor = processor  # the API's: only for the retrain counter it reads
        self.command = list(command or [sys.executable, "-m", "backend.jobs.worker_child"])
        self.env = dict(os.environ)
        if settings is not None:
            self.env[SETTINGS_ENV] = settings_json(settings)
        self.restart_seconds = restart_seconds
        self.max_restart_seconds = max_restart_seconds
        self.restarts = 0
        self.last_exit: int | None = None
        self._reported: dict[str, Any] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the wake pipe's end: swapped at each (re)start
        self._wake: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self.stream = OutboxWake(self)

    # -- stream side (the tracker) ---------------------------------------------------------

    def publish(self, events: Sequence[StreamEvent]) -> bool:
        """Wake the child. True even while it is down: the events wait in the outbox."""
        with self._lock:
            if self._wake is not None and events:
                try:
                    os.write(self._wake, b".")
                except BlockingIOError:
                    pass  # the pipe is full of wakes: the child will look anyway
                except OSError:
                    pass  # the child died: its successor reads the outbox
        return True

    def lag_seconds(self) -> float:
        """Age of the oldest event the child has not processed."""
        with Session(self.db) as session:
            oldest = session.exec(sql_select(func.min(col(EventOutbox.stored_at)))).one()
        if oldest is None:
            return 0.0
        return max(0.0, (utcnow() - as_utc(oldest)).total_seconds())

    def waiting(self) -> int:
        with Session(self.db) as session:
            return crud.outbox_size(session=session)

    # -- worker side (the app's lifespan, /health) ------------------------------------------

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._supervise, name="event-worker-process", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Close the wake pipe (the child finishes its batch and exits), then insist."""
        self._stop.set()
        self._close_wake()
        proc = self._proc
        if proc is not None:
            for send in (None, proc.terminate, proc.kill):
                if send is not None:
                    send()
                try:
                    proc.wait(timeout=timeout if send is None else 5.0)
                    break
                except subprocess.TimeoutExpired:
                    log.warning("worker process %d still running; signalling it", proc.pid)
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    @property
    def running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def status(self) -> StreamStatus:
        state = "ok" if self.running else "degraded"
        got = self._reported
        detail = (
            f"worker process {self.pid or '-'}, {'running' if self.running else 'stopped'}, "
            f"{got.get('processed', 0)} processed"
        )
        if got.get("failed"):
            detail += f", {got['failed']} failed step(s) (last: {got.get('last_error')})"
        if self.restarts:
            detail += f", {self.restarts} restart(s) (last exit {self.last_exit})"
        detail += f"; {got.get('precompute', 'starting')}; {self.processor.retrain_status()}"
        return StreamStatus(backend="worker-process", status=state, detail=detail)

    def _supervise(self) -> None:
        backoff = self.restart_seconds
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._run_child()
            except Exception:
                log.exception("could not start the worker process")
            if self._stop.is_set():
                break
            self.restarts += 1
            if time.monotonic() - started > 60:
                backoff = self.restart_seconds  # it lived: not a crash loop
            log.warning(
                "worker process exited (code %s); restarting in %.1f s", self.last_exit, backoff
            )
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self.max_restart_seconds)

    def _run_child(self) -> None:
        wake_read, wake_write = os.pipe()
        status_read, status_write = os.pipe()
        try:
            os.set_blocking(wake_write, False)  # a request never waits on the child
            proc = subprocess.Popen(
                [*self.command, str(status_write)],
                stdin=wake_read,
                pass_fds=(status_write,),
                env=self.env,
            )
        except BaseException:
            for fd in (wake_read, wake_write, status_read, status_write):
                os.close(fd)
            raise
        os.close(wake_read)
        os.close(status_write)
        self._proc = proc
        with self._lock:
            self._wake = wake_write
        if self._stop.is_set():  # stopped while starting
            self._close_wake()
        log.info("worker process %d started", proc.pid)
        with os.fdopen(status_read, "rb") as lines:
            for line in lines:  # until the child exits (its end closes)
                try:
                    self._reported = json.loads(line)
                except ValueError:
                    log.warning("worker process: unreadable status line %r", line[:200])
        self.last_exit = proc.wait()
        self._close_wake()

    def _close_wake(self) -> None:
        with self._lock:
            if self._wake is not None:
                os.close(self._wake)
                self._wake = None


class OutboxWake:
    """The tracker's event stream in this mode: the events are in the outbox already, so
    publishing only wakes the child (True even while it is down: its successor reads them)."""

    durable = False  # the outbox rows stay until the child has processed their events

    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker

    def publish(self, events: Sequence[StreamEvent]) -> bool:
        return self.worker.publish(events)

    def lag_seconds(self) -> float:
        return self.worker.lag_seconds()

    def status(self) -> StreamStatus:
        return StreamStatus(
            backend="outbox", status="ok", detail=f"event outbox, {self.worker.waiting()} waiting"
        )
