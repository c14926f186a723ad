"""Experiments: define, serve (bucket users into variants), stop, promote and report.

What serves: the running experiment buckets every user into a variant (at most one runs at
a time); with none running, the most recently promoted experiment's winner serves everyone;
otherwise the configured default. Stopping ends bucketing (everyone gets the default);
promoting ends it too, and the winner's configuration then serves all traffic until
another experiment runs or is promoted. A report counts impressions shown while the
experiment ran, and the events each drew within the attribution window.

The request path (``assign``) reads an in-process copy of the serving experiments, refreshed
from the database at most every ``refresh_seconds`` (by one request, the others keep using
the current copy), so a change made through any process is live everywhere within that time
and at once in the process that made it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from backend.db.crud import analytics as analytics_queries
from backend.db.engine import session_scope
from backend.db.models import Experiment, as_utc, utcnow
from backend.errors import ConflictError, InvalidInputError, NotFoundError
from backend.experiments import bucketing, stats
from backend.experiments.model import (
    BLENDED_STRATEGY,
    ExperimentCreate,
    ExperimentOut,
    ExperimentRef,
    ExperimentReport,
    VariantReport,
    VariantSpec,
)
from backend.llm.explainer import Explainer
from backend.llm.prompt_store import PromptStore
from backend.llm.prompts import PromptLibrary
from backend.pagination import Page
from backend.recommender.strategies import BlendStrategy, Strategy

log = logging.getLogger(__name__)

CONFIDENCE = 0.95

ExplainerFactory = Callable[[PromptLibrary], Explainer]


@dataclass(frozen=True, slots=True)
class Arm:
    """What one variant changes in a recommendation, ready to use on the request path."""

    ref: ExperimentRef
    strategy: str | None  # None: the service's default
    ranker: Strategy | None  # a blend variant's own hybrid (None: the named strategy)
    explainer: Explainer | None  # a pinned prompt's explainer (None: the service's)
    window: timedelta
    tag: str  # part of the cache field: a variant's lists never mix with another's


@dataclass(frozen=True, slots=True)
class _Serving:
    experiment_id: uuid.UUID
    name: str  # the bucketing key: unique, and the same when the definition is reloaded
    status: str
    winner: str | None
    arms: tuple[Arm, ...]
    shares: tuple[float, ...]

    def arm_for(self, user_id: object) -> Arm:
        if self.status == "running":
            return self.arms[bucketing.assign(self.name, user_id, self.shares)]
        return next(a for a in self.arms if a.ref.variant == self.winner)


def to_out(row: Experiment) -> ExperimentOut:
    return ExperimentOut(
        id=row.id,
        name=row.name,
        description=row.description,
        status=row.status,
        variants=[VariantSpec.model_validate(v) for v in row.variants],
        attribution_window_hours=row.attribution_window_hours,
        winner=row.winner,
        created_at=as_utc(row.created_at),
        stopped_at=as_utc(row.stopped_at) if row.stopped_at else None,
    )


class ExperimentService:
    def __init__(
        self,
        *,
        db: Engine,
        strategies: Mapping[str, Strategy],
        prompts: PromptLibrary,
        prompt_store: PromptStore | None = None,
        explainer_for: ExplainerFactory | None = None,
        refresh_seconds: float = 2.0,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.strategies = strategies
        self.prompts = prompts
        self.prompt_store = prompt_store
        self.explainer_for = explainer_for
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._monotonic = monotonic
        self._refresh = threading.Lock()
        self._serving: _Serving | None = None
        self._loaded_at: float | None = None

    # -- the request path ------------------------------------------------------------------------

    def assign(self, user_id: object) -> Arm | None:
        """The variant serving this user, or None when no experiment decides."""
        serving = self._current()
        return serving.arm_for(user_id) if serving is not None else None

    def invalidate(self) -> None:
        self._loaded_at = None

    def _current(self) -> _Serving | None:
        loaded_at = self._loaded_at
        now = self._monotonic()
        if loaded_at is not None and now - loaded_at < self.refresh_seconds:
            return self._serving
        # One request refreshes; the others go on with the copy they have.
        if not self._refresh.acquire(blocking=loaded_at is None):
            return self._serving
        try:
            if self._loaded_at is not None and self._loaded_at != loaded_at:
                return self._serving  # refreshed while this thread waited
            try:
                with Session(self.db) as session:
                    rows = analytics_queries.serving_experiments(session=session)
                self._serving = self._build(self._choose(rows))
            except SQLAlchemyError:
                log.warning("experiments unreadable; serving the last known ones", exc_info=True)
            self._loaded_at = now
            return self._serving
        finally:
            self._refresh.release()

    @staticmethod
    def _choose(rows: list[Experiment]) -> Experiment | None:
        running = [r for r in rows if r.status == "running"]
        if running:
            return max(running, key=lambda r: as_utc(r.created_at))
        promoted = [r for r in rows if r.status == "promoted" and r.stopped_at is not None]
        return max(promoted, key=lambda r: as_utc(r.stopped_at or r.created_at), default=None)

    def _build(self, row: Experiment | None) -> _Serving | None:
        if row is None:
            return None
        current = self._serving
        if (
            current is not None
            and current.experiment_id == row.id
            and (current.status, current.winner) == (row.status, row.winner)
        ):
            return current  # unchanged: keep the built strategies and explainers
        variants = [VariantSpec.model_validate(v) for v in row.variants]
        window = timedelta(hours=row.attribution_window_hours)
        arms = tuple(self._arm(row, v, window) for v in variants)
        return _Serving(
            experiment_id=row.id,
            name=row.name,
            status=row.status,
            winner=row.winner,
            arms=arms,
            shares=tuple(v.share for v in variants),
        )

    def _arm(self, row: Experiment, variant: VariantSpec, window: timedelta) -> Arm:
        strategy = variant.strategy
        ranker: Strategy | None = None
        if variant.blend is not None:
            strategy = BLENDED_STRATEGY
            base = self.strategies.get(BLENDED_STRATEGY)
            if isinstance(base, BlendStrategy):
                config = replace(base.config, weights=variant.blend.weights())
                ranker = BlendStrategy(
                    BLENDED_STRATEGY, config, base.models, action_weights=base.action_weights
                )
        if strategy is not None and strategy not in self.strategies:
            log.error("experiment %s: strategy %r is gone; serving the default", row.name, strategy)
            strategy, ranker = None, None
        return Arm(
            ref=ExperimentRef(id=row.id, name=row.name, variant=variant.name),
            strategy=strategy,
            ranker=ranker,
            explainer=self._pinned_explainer(variant),
            window=window,
            tag=f"{row.id.hex[:12]}:{variant.name}",
        )

    def _pinned_explainer(self, variant: VariantSpec) -> Explainer | None:
        pinned = variant.pinned_prompt
        if pinned is None or self.explainer_for is None or self.prompt_store is None:
            return None
        name, version = pinned
        stored = self.prompt_store.get(name, version)
        if stored is None or stored.source is None:
            log.error("prompt %s version %d is gone; variant %s uses the current one",
                      name, version, variant.name)  # fmt: skip
            return None
        return self.explainer_for(self.prompts.with_draft(name, stored.source))

    # -- administration ---------------------------------------------------------------------------

    def create(self, spec: ExperimentCreate) -> ExperimentOut:
        self._validate(spec)
        try:
            with session_scope(self.db) as session:
                if analytics_queries.find_experiment(session=session, name=spec.name):
                    raise ConflictError(f"an experiment named {spec.name!r} already exists")
                running = [
                    r
                    for r in analytics_queries.serving_experiments(session=session)
                    if r.status == "running"
                ]
                if running:
                    raise ConflictError(
                        f"experiment {running[0].name!r} is running; stop or promote it first"
                    )
                row = analytics_queries.add_experiment(
                    session=session,
                    experiment=Experiment(
                        name=spec.name,
                        description=spec.description,
                        status="running",
                        variants=[v.model_dump(mode="json") for v in spec.variants],
                        attribution_window_hours=spec.attribution_window_hours,
                        created_at=self.clock(),
                    ),
                )
                out = to_out(row)
        except IntegrityError as exc:  # a concurrent create with the same name
            raise ConflictError(f"an experiment named {spec.name!r} already exists") from exc
        self.invalidate()
        return out

    def _validate(self, spec: ExperimentCreate) -> None:
        for variant in spec.variants:
            if variant.strategy is not None and variant.strategy not in self.strategies:
                known = ", ".join(sorted(self.strategies))
                raise InvalidInputError(
                    f"variant {variant.name!r}: unknown strategy {variant.strategy!r}; "
                    f"choose one of: {known}"
                )
            if variant.blend is not None and not isinstance(
                self.strategies.get(BLENDED_STRATEGY), BlendStrategy
            ):
                raise InvalidInputError("blend weights need the hybrid strategy")
            pinned = variant.pinned_prompt
            if pinned is not None:
                if self.prompt_store is None:
                    raise InvalidInputError("prompt versions are not available")
                stored = self.prompt_store.get(*pinned)
                if stored is None or stored.source is None:
                    raise InvalidInputError(
                        f"variant {variant.name!r}: {pinned[0]} has no stored version "
                        f"{pinned[1]} (see /admin/prompts)"
                    )

    def list_experiments(self, *, limit: int, offset: int) -> Page[ExperimentOut]:
        with Session(self.db) as session:
            page = analytics_queries.list_experiments(session=session, limit=limit, offset=offset)
            return Page(
                items=[to_out(r) for r in page.items], total=page.total, limit=limit, offset=offset
            )

    def get(self, experiment_id: uuid.UUID) -> ExperimentOut:
        with Session(self.db) as session:
            return to_out(self._row(session, experiment_id))

    def stop(self, experiment_id: uuid.UUID) -> ExperimentOut:
        """No more bucketing: everyone gets the default again."""
        with session_scope(self.db) as session:
            row = self._row(session, experiment_id)
            if row.status != "running":
                raise ConflictError(f"experiment {row.name!r} is already {row.status}")
            row.status, row.stopped_at = "stopped", self.clock()
            session.add(row)
            out = to_out(row)
        self.invalidate()
        return out

    def promote(self, experiment_id: uuid.UUID, variant: str) -> ExperimentOut:
        """End bucketing and serve ``variant``'s configuration to everyone (a running or a
        stopped experiment; the newest promotion wins)."""
        with session_scope(self.db) as session:
            row = self._row(session, experiment_id)
            names = [str(v["name"]) for v in row.variants]
            if variant not in names:
                raise InvalidInputError(
                    f"experiment {row.name!r} has no variant {variant!r}; "
                    f"choose one of: {', '.join(names)}"
                )
            if row.status == "promoted":
                raise ConflictError(f"experiment {row.name!r} is already promoted ({row.winner})")
            # stopped_at marks the end of the measured period; for a stopped experiment
            # nothing was tagged since, so moving it to now changes no report.
            row.status, row.winner, row.stopped_at = "promoted", variant, self.clock()
            session.add(row)
            out = to_out(row)
        self.invalidate()
        return out

    def report(self, experiment_id: uuid.UUID) -> ExperimentReport:
        with Session(self.db) as session:
            row = self._row(session, experiment_id)
            counts = {
                c.variant: c
                for c in analytics_queries.variant_counts(
                    session=session,
                    experiment_id=row.id,
                    since=as_utc(row.created_at),
                    until=as_utc(row.stopped_at) if row.stopped_at else None,
                )
            }
            out = to_out(row)
        variants = []
        for spec in out.variants:
            c = counts.get(spec.name) or analytics_queries.VariantCounts(
                spec.name, 0, 0, 0, 0, 0, 0
            )
            variants.append(
                VariantReport(
                    variant=spec.name,
                    users=c.users,
                    impressions=c.impressions,
                    clicks=c.clicks,
                    add_to_carts=c.add_to_carts,
                    purchases=c.purchases,
                    ctr=round(stats.proportion(c.clicks, c.impressions), 6),
                    ctr_ci=_rounded(stats.wilson_interval(c.clicks, c.impressions, CONFIDENCE)),
                    conversion=round(stats.proportion(c.converted_users, c.users), 6),
                    conversion_ci=_rounded(
                        stats.wilson_interval(c.converted_users, c.users, CONFIDENCE)
                    ),
                )
            )
        verdict = stats.verdict(
            [stats.Arm(v.variant, v.clicks, v.impressions) for v in variants],
            confidence=CONFIDENCE,
        )
        return ExperimentReport(
            experiment_id=out.id,
            status=out.status,
            variants=variants,
            best_variant=verdict.best,
            p_value=verdict.p_value,
            confident=verdict.confident,
            confidence_level=CONFIDENCE,
        )

    @staticmethod
    def _row(session: Session, experiment_id: uuid.UUID) -> Experiment:
        row = analytics_queries.get_experiment(session=session, experiment_id=experiment_id)
        if row is None:
            raise NotFoundError("experiment", experiment_id)
        return row

    # -- configuration ---------------------------------------------------------------------------

    def load_file(self, path: Path) -> list[str]:
        """Create the experiments of EXPERIMENTS_FILE (JSON or YAML) not created yet.

        The file holds a list of experiment definitions (the POST /experiments body), or a
        mapping with such a list under ``experiments``. Names already present are left as
        they are (their status is the API's business); one that clashes with a running
        experiment is logged and skipped. Returns the names created.
        """
        specs = parse_experiments_file(path)
        created = []
        for spec in specs:
            with Session(self.db) as session:
                if analytics_queries.find_experiment(session=session, name=spec.name):
                    continue
            try:
                self.create(spec)
            except ConflictError as exc:
                log.error("EXPERIMENTS_FILE %s: %s not created: %s", path, spec.name, exc)
                continue
            created.append(spec.name)
        if created:
            log.info("created experiment(s) from %s: %s", path, ", ".join(created))
        return created


def parse_experiments_file(path: Path) -> list[ExperimentCreate]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"EXPERIMENTS_FILE {path}: {exc.strerror or exc}") from exc
    data: Any
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise InvalidInputError(f"EXPERIMENTS_FILE {path} does not parse: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("experiments")
    if not isinstance(data, list):
        raise InvalidInputError(
            f"EXPERIMENTS_FILE {path}: expected a list of experiments (or 'experiments: [...]')"
        )
    specs = []
    for index, item in enumerate(data):
        try:
            specs.append(ExperimentCreate.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'experiment'}: {e['msg']}"
                for e in exc.errors()
            )
            raise InvalidInputError(f"EXPERIMENTS_FILE {path}, entry {index}: {problems}") from exc
    return specs


def _rounded(interval: tuple[float, float]) -> tuple[float, float]:
    return (round(interval[0], 6), round(interval[1], 6))
