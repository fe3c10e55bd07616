"""An annotator's own recent judgments, and taking one back (undo) or replacing it (edit).

A withdrawn judgment moves whole into WithdrawnJudgment (who, when, what replaced it), so every
reader of Judgment sees only the judgments that stand and nothing is deleted without a trace.
Undo frees the item's slot and claims the item for the annotator, so it is the next one they
see; an edit withdraws the old judgment and stores the new one in the same transaction, so the
slot is never free in between and exports see exactly one answer from that annotator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from storage.crud import StoreError
from storage.models import (
    AnnotationItem,
    Judgment,
    JudgmentKind,
    JudgmentReview,
    Prompt,
    WithdrawnJudgment,
    aware,
    utcnow,
)
from storage.queue import claim

HISTORY_SIZE = 10
_EXCERPT = 120


@dataclass(frozen=True)
class Entry:
    judgment_id: int
    item_id: int
    kind: str  # "skip" or the item's kind
    prompt: str  # an excerpt
    answer: str
    created_at: datetime


def _excerpt(text: str, limit: int = _EXCERPT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def describe(kind: str, payload: dict) -> str:
    """The answer as the annotator gave it, in words (left/right as they saw it)."""
    if kind == JudgmentKind.skip.value:
        return f"skipped: {payload.get('reason', '')}"
    if kind == JudgmentKind.pairwise.value:
        shown = payload.get("shown_choice") or payload.get("choice")
        return {"left": "A (left)", "right": "B (right)", "a": "A", "b": "B", "tie": "Tie", "both_bad": "Both bad"}.get(
            str(shown), str(shown)
        )
    if kind == JudgmentKind.rating.value:
        comment = payload.get("comment")
        return f"score {payload.get('score')}" + (f" · {_excerpt(comment, 60)}" if comment else "")
    if kind == JudgmentKind.ranking.value:
        return "order " + " ".join(str(n) for n in payload.get("order_shown", []))
    if kind == JudgmentKind.correction.value:
        return "corrected: " + _excerpt(str(payload.get("corrected", "")), 60)
    return str(payload)


def recent(session: Session, *, user_id: int, kind: str, limit: int = HISTORY_SIZE) -> list[Entry]:
    """The user's last `limit` standing judgments and skips of items of `kind`, newest first."""
    rows = session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel types select() for up to 4 columns
            Judgment.id, Judgment.item_id, Judgment.kind, Judgment.payload, Judgment.created_at, Prompt.text
        )
        .join(AnnotationItem, col(AnnotationItem.id) == Judgment.item_id)
        .join(Prompt, col(Prompt.id) == Judgment.prompt_id)
        .where(col(Judgment.user_id) == user_id, col(AnnotationItem.kind) == kind)
        .order_by(col(Judgment.id).desc())
        .limit(limit)
    ).all()
    return [
        Entry(
            judgment_id=judgment_id,  # type: ignore[arg-type]  # a stored row's id
            item_id=item_id,  # type: ignore[arg-type]  # joined to its item
            kind=judgment_kind,
            prompt=_excerpt(prompt),
            answer=describe(judgment_kind, payload),
            created_at=aware(created_at),
        )
        for judgment_id, item_id, judgment_kind, payload, created_at, prompt in rows
    ]


def own_judgment(session: Session, *, user_id: int, judgment_id: int, kind: str | None = None) -> Judgment:
    """The user's own standing app judgment `judgment_id` (of an item of `kind`), else StoreError."""
    judgment = session.get(Judgment, judgment_id)
    if judgment is None or judgment.user_id != user_id or judgment.item_id is None:
        gone = session.exec(select(WithdrawnJudgment).where(col(WithdrawnJudgment.judgment_id) == judgment_id)).first()
        if gone is not None and gone.user_id == user_id:
            raise StoreError(f"judgment {judgment_id}: already withdrawn")
        raise StoreError(f"judgment {judgment_id}: not one of your judgments")
    if kind is not None:
        item = session.get_one(AnnotationItem, judgment.item_id)
        if item.kind != kind:
            raise StoreError(f"judgment {judgment_id}: judges a {item.kind} item, not {kind}")
    return judgment


def withdraw(session: Session, *, user_id: int, judgment_id: int, kind: str | None = None) -> Judgment:
    """Move the user's judgment into WithdrawnJudgment and free its slot; returns the withdrawn row (detached)."""
    judgment = own_judgment(session, user_id=user_id, judgment_id=judgment_id, kind=kind)
    if session.exec(select(JudgmentReview.id).where(col(JudgmentReview.judgment_id) == judgment_id)).first():
        raise StoreError(f"judgment {judgment_id}: a reviewer has decided on it; it can no longer be changed")
    session.add(
        WithdrawnJudgment(
            judgment_id=judgment_id,
            user_id=user_id,
            item_id=judgment.item_id,
            judgment=judgment.model_dump(mode="json"),
            withdrawn_at=utcnow(),
        )
    )
    if judgment.kind != JudgmentKind.skip.value:
        session.execute(
            update(AnnotationItem)
            .where(col(AnnotationItem.id) == judgment.item_id, col(AnnotationItem.judged_count) > 0)
            .values(judged_count=col(AnnotationItem.judged_count) - 1)
        )
    session.delete(judgment)
    session.flush()
    session.expunge(judgment)
    return judgment


def undo(session: Session, *, user_id: int, judgment_id: int, kind: str | None = None) -> int:
    """Withdraw the judgment and give its item back to the user first; returns the item id."""
    judgment = withdraw(session, user_id=user_id, judgment_id=judgment_id, kind=kind)
    assert judgment.item_id is not None  # own_judgment refuses judgments without an item
    claim(session, item_id=judgment.item_id, user_id=user_id)
    return judgment.item_id


def record_replacement(session: Session, *, judgment_id: int, replaced_by_id: int) -> None:
    """Say which new judgment an edit stored in place of the withdrawn `judgment_id`."""
    session.execute(
        update(WithdrawnJudgment)
        .where(col(WithdrawnJudgment.judgment_id) == judgment_id, col(WithdrawnJudgment.replaced_by_id).is_(None))
        .values(replaced_by_id=replaced_by_id)
    )


def withdrawn(session: Session, *, user_id: int) -> list[WithdrawnJudgment]:
    """What the user withdrew, oldest first."""
    return list(
        session.exec(
            select(WithdrawnJudgment)
            .where(col(WithdrawnJudgment.user_id) == user_id)
            .order_by(col(WithdrawnJudgment.id))
        ).all()
    )
