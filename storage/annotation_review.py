"""Reviewing annotators' judgments: a reviewer accepts or rejects each one, and rejected ones leave training exports.

One row per reviewed judgment (storage.models.JudgmentReview): a later decision
replaces the earlier one and records its own reviewer and time, so deciding twice
is the same as deciding once. Skips are not reviewed: no export reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.crud import StoreError, check_text
from storage.models import (
    NO_PREFERENCE_LABELS,
    Generation,
    Judgment,
    JudgmentKind,
    JudgmentReview,
    Prompt,
    ReviewDecision,
    User,
    aware,
    utcnow,
)

DECISIONS = tuple(d.value for d in ReviewDecision)
MAX_NOTE = 2000


@dataclass(frozen=True)
class Decision:
    judgment_id: int
    decision: str
    note: str | None = None


@dataclass(frozen=True)
class ReviewRow:
    """A judgment as a reviewer sees it: its item (prompt and responses in canonical order) and its answer."""

    judgment_id: int
    annotator: str
    kind: str
    created_at: datetime
    prompt: str
    responses: list[str]
    answer: str
    decision: str | None
    reviewer: str | None
    note: str | None


def _checked(decision: Decision) -> Decision:
    if decision.decision not in DECISIONS:
        raise StoreError(f"decision: {decision.decision!r} is not one of {', '.join(DECISIONS)}")
    note = decision.note.strip() if decision.note else None
    if note:
        check_text(note, what="note")
        if len(note) > MAX_NOTE:
            raise StoreError(f"note: {len(note)} characters, at most {MAX_NOTE}")
    return Decision(int(decision.judgment_id), decision.decision, note or None)


def record_decisions(session: Session, *, reviewer_id: int, decisions: Iterable[Decision]) -> list[JudgmentReview]:
    """Record every decision in `session`'s transaction, or none: unknown or skip judgment ids are refused by id."""
    checked = [_checked(d) for d in decisions]
    ids = sorted({d.judgment_id for d in checked})
    kinds = dict(session.exec(select(Judgment.id, Judgment.kind).where(col(Judgment.id).in_(ids))).all())
    unknown = [i for i in ids if i not in kinds]
    if unknown:
        raise StoreError(f"No judgment with id {', '.join(map(str, unknown))}; nothing was recorded.")
    skips = [i for i in ids if kinds[i] == JudgmentKind.skip.value]
    if skips:
        raise StoreError(f"Judgment {', '.join(map(str, skips))} is a skip; skips are not reviewed.")
    existing = {
        r.judgment_id: r for r in session.exec(select(JudgmentReview).where(col(JudgmentReview.judgment_id).in_(ids)))
    }
    now = utcnow()
    recorded = []
    for d in checked:
        row = existing.get(d.judgment_id) or JudgmentReview(
            judgment_id=d.judgment_id, decision=d.decision, reviewer_id=reviewer_id
        )
        row.decision, row.reviewer_id, row.note, row.decided_at = d.decision, reviewer_id, d.note, now
        session.add(row)
        existing[d.judgment_id] = row
        recorded.append(row)
    session.flush()
    return recorded


def rejected_ids(session: Session) -> set[int]:
    return set(
        session.exec(
            select(JudgmentReview.judgment_id).where(JudgmentReview.decision == ReviewDecision.rejected.value)
        ).all()
    )


def decisions_of(session: Session, judgment_ids: Sequence[int]) -> dict[int, str]:
    """The current decision per reviewed judgment among `judgment_ids`."""
    return dict(
        session.exec(
            select(JudgmentReview.judgment_id, JudgmentReview.decision).where(
                col(JudgmentReview.judgment_id).in_(list(judgment_ids))
            )
        ).all()
    )


def annotators_with_judgments(session: Session) -> list[str]:
    query = select(User.username).where(col(User.id).in_(select(Judgment.user_id).distinct())).order_by(User.username)
    return list(session.exec(query).all())


def _answer(kind: str, generation_ids: list[int], payload: dict) -> str:
    if kind == JudgmentKind.pairwise.value:
        choice = str(payload.get("choice"))
        return {"a": "A is better", "b": "B is better"}.get(choice, NO_PREFERENCE_LABELS.get(choice, choice))
    if kind == JudgmentKind.ranking.value:
        return "Ranked best first: " + " > ".join(f"#{i + 1}" for i in range(len(generation_ids)))
    if kind == JudgmentKind.rating.value:
        comment = payload.get("comment")
        return f"Score {payload.get('score')}/5" + (f" — {comment}" if comment else "")
    if kind == JudgmentKind.correction.value:
        return f"Corrected to: {payload.get('corrected', '')}"
    return kind


def recent_judgments(
    session: Session, *, annotator: str | None = None, unreviewed_only: bool = False, limit: int = 20
) -> list[ReviewRow]:
    """The newest reviewable judgments, newest first, with their items and current decisions."""
    query = (
        select(Judgment, User.username, JudgmentReview)
        .join(User, col(User.id) == Judgment.user_id)
        .outerjoin(JudgmentReview, col(JudgmentReview.judgment_id) == Judgment.id)
        .where(Judgment.kind != JudgmentKind.skip.value)
    )
    if annotator:
        query = query.where(User.username == annotator)
    if unreviewed_only:
        query = query.where(col(JudgmentReview.id).is_(None))
    rows = session.exec(query.order_by(col(Judgment.id).desc()).limit(limit)).all()
    prompts = dict(
        session.exec(select(Prompt.id, Prompt.text).where(col(Prompt.id).in_({j.prompt_id for j, _, _ in rows}))).all()
    )
    texts = dict(
        session.exec(
            select(Generation.id, Generation.text).where(
                col(Generation.id).in_({g for j, _, _ in rows for g in j.generation_ids})
            )
        ).all()
    )
    reviewers = dict(
        session.exec(
            select(User.id, User.username).where(col(User.id).in_({r.reviewer_id for _, _, r in rows if r}))
        ).all()
    )
    return [
        ReviewRow(
            judgment_id=j.id or 0,
            annotator=username,
            kind=j.kind,
            created_at=aware(j.created_at),
            prompt=prompts.get(j.prompt_id, ""),
            responses=[texts.get(g, "") for g in j.generation_ids],
            answer=_answer(j.kind, j.generation_ids, j.payload),
            decision=review.decision if review else None,
            reviewer=reviewers.get(review.reviewer_id) if review else None,
            note=review.note if review else None,
        )
        for j, username, review in rows
    ]


def review_totals(session: Session) -> dict[str, int]:
    """How many reviewable judgments are accepted, rejected and unreviewed."""
    counts = dict(session.exec(select(JudgmentReview.decision, func.count()).group_by(JudgmentReview.decision)).all())
    total = session.exec(select(func.count(col(Judgment.id))).where(Judgment.kind != JudgmentKind.skip.value)).one()
    accepted, rejected = counts.get("accepted", 0), counts.get("rejected", 0)
    return {"accepted": accepted, "rejected": rejected, "unreviewed": total - accepted - rejected}
