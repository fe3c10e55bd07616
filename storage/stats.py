"""What feedback data there is: judgments per kind, per annotator, and new since the last round."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models import AnnotationItem, Judgment, Round, User


@dataclass(frozen=True)
class DataSummary:
    by_kind: dict[str, int]
    by_annotator: dict[str, int]
    since_last_round: int
    last_round_id: int | None
    queue_items: int


def last_snapshot_round(session: Session) -> Round | None:
    """The newest round that took a data snapshot (its `data_snapshot.max_judgment_id`)."""
    for round_ in session.exec(select(Round).order_by(col(Round.id).desc())):
        if isinstance(round_.data_snapshot, dict) and "max_judgment_id" in round_.data_snapshot:
            return round_
    return None


def data_summary(session: Session) -> DataSummary:
    by_kind = dict(session.exec(select(Judgment.kind, func.count()).group_by(Judgment.kind)).all())
    by_annotator = dict(
        session.exec(
            select(User.username, func.count())
            .join(Judgment, col(Judgment.user_id) == User.id)
            .where(Judgment.kind != "skip")
            .group_by(User.username)
            .order_by(User.username)
        ).all()
    )
    last = last_snapshot_round(session)
    bound = int(last.data_snapshot["max_judgment_id"] or 0) if last else 0
    new = session.exec(
        select(func.count()).select_from(Judgment).where(col(Judgment.id) > bound, Judgment.kind != "skip")
    ).one()
    items = session.exec(select(func.count()).select_from(AnnotationItem)).one()
    return DataSummary(
        by_kind=by_kind,
        by_annotator=by_annotator,
        since_last_round=new,
        last_round_id=last.id if last else None,
        queue_items=items,
    )
