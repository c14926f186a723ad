"""Data access for runtime prompt versions (``prompt_version``): keyword-only, session given."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.db.models import PromptVersion, utcnow


def latest(*, session: Session, name: str) -> PromptVersion | None:
    return session.exec(
        select(PromptVersion)
        .where(PromptVersion.name == name)
        .order_by(col(PromptVersion.version).desc())
        .limit(1)
    ).first()


def latest_per_name(*, session: Session) -> dict[str, PromptVersion]:
    newest = (
        select(PromptVersion.name, sa.func.max(PromptVersion.version).label("v"))
        .group_by(col(PromptVersion.name))
        .subquery()
    )
    rows = session.exec(
        select(PromptVersion).join(
            newest,
            sa.and_(
                col(PromptVersion.name) == newest.c.name, col(PromptVersion.version) == newest.c.v
            ),
        )
    ).all()
    return {row.name: row for row in rows}


def get(*, session: Session, name: str, version: int) -> PromptVersion | None:
    return session.exec(
        select(PromptVersion).where(PromptVersion.name == name, PromptVersion.version == version)
    ).first()


def history(*, session: Session, name: str) -> Sequence[PromptVersion]:
    return session.exec(
        select(PromptVersion)
        .where(PromptVersion.name == name)
        .order_by(col(PromptVersion.version).desc())
    ).all()


def add(
    *, session: Session, name: str, source: str | None, author: str, note: str | None = None
) -> PromptVersion:
    """Store the next version number; two writers racing get distinct numbers or a retry."""
    for _ in range(3):
        current = latest(session=session, name=name)
        row = PromptVersion(
            name=name,
            version=(current.version if current else 0) + 1,
            source=source,
            author=author,
            note=note,
            created_at=utcnow(),
        )
        try:
            with session.begin_nested():
                session.add(row)
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        session.refresh(row)
        return row
    raise RuntimeError(f"could not store a new version of {name!r}: too many concurrent writers")
