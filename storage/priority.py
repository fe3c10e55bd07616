"""Which open items come first: `AnnotationItem.priority`, written here off the serving path.

Serving stays one `ORDER BY priority DESC, id` (storage.queue); the scores are
computed in a background step and written in one transaction:
- disagreement: open items whose judgments so far disagree come first (pairs:
  share of votes not for the most common outcome; ratings: spread of scores);
- uncertainty: p(a ≻ b) from a preference model, scored by the caller (storage
  never loads models; rlhf.quality.selection does) and stored as 1 − 2·|p − 0.5|;
- margin: the same p, stored as 2·|p − 0.5|: pairs the model thinks clearly differ come first.
Only ordinary (`train`) items are re-scored; gold items and swap checks are
served by rate, not by priority, and the adversarial set's items stay first (storage.redteam).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import bindparam, update
from sqlmodel import Session, col, select

from storage.models import AnnotationItem, Generation, Judgment, JudgmentKind, Prompt
from storage.queue import TRAIN
from storage.redteam import ADVERSARIAL_PRIORITY

SELECTIONS = ("random", "uncertainty", "margin", "disagreement")

_open_train = (
    col(AnnotationItem.judged_count) < AnnotationItem.overlap,
    col(AnnotationItem.purpose) == TRAIN,
    col(AnnotationItem.priority) < ADVERSARIAL_PRIORITY,  # the adversarial set's items keep their place first
)
_SET = (
    update(AnnotationItem)
    .where(col(AnnotationItem.id) == bindparam("item_id"))
    .values(priority=bindparam("new_priority"))
)


@dataclass(frozen=True)
class OpenPair:
    item_id: int
    prompt: str
    a: str
    b: str


def open_pairs(session: Session, *, item_ids: set[int] | None = None) -> list[OpenPair]:
    """Open ordinary pairwise items with their texts, for a scorer."""
    rows = session.exec(
        select(AnnotationItem.id, AnnotationItem.generation_ids, Prompt.text)
        .join(Prompt, col(Prompt.id) == AnnotationItem.prompt_id)
        .where(col(AnnotationItem.kind) == JudgmentKind.pairwise.value, *_open_train)
        .order_by(col(AnnotationItem.id))
    ).all()
    if item_ids is not None:
        rows = [row for row in rows if row[0] in item_ids]
    wanted = {g for _, ids, _ in rows for g in ids}
    texts = (
        dict(session.exec(select(Generation.id, Generation.text).where(col(Generation.id).in_(wanted))).all())
        if wanted
        else {}
    )
    return [OpenPair(cast(int, item_id), prompt, texts[ids[0]], texts[ids[1]]) for item_id, ids, prompt in rows]


def uncertainty(p_a_wins: float) -> float:
    """1 for a coin flip, 0 for a certain preference."""
    return 1.0 - 2.0 * abs(p_a_wins - 0.5)


def margin(p_a_wins: float) -> float:
    """1 for a certain preference, 0 for a coin flip."""
    return 2.0 * abs(p_a_wins - 0.5)


def disagreement_priorities(session: Session) -> dict[int, float]:
    """Per open ordinary pair or rating item with judgments: how much its judges disagree so far (0: not at all)."""
    rows = session.exec(
        select(Judgment.item_id, Judgment.kind, Judgment.generation_ids, Judgment.payload)
        .join(AnnotationItem, col(AnnotationItem.id) == Judgment.item_id)
        .where(
            col(AnnotationItem.kind).in_([JudgmentKind.pairwise.value, JudgmentKind.rating.value]),
            col(Judgment.kind) != JudgmentKind.skip.value,
            *_open_train,
        )
    ).all()
    votes: dict[int, list] = defaultdict(list)
    for item_id, kind, generation_ids, payload in rows:
        assert item_id is not None  # joined to its item
        if kind == JudgmentKind.pairwise.value:
            choice: Any = payload.get("choice")
            votes[item_id].append({"a": generation_ids[0], "b": generation_ids[1]}.get(choice, "none"))
        else:
            votes[item_id].append(float(payload["score"]))
    out = {}
    for item_id, values in votes.items():
        if isinstance(values[0], float):
            out[item_id] = (max(values) - min(values)) / 4.0
        else:
            out[item_id] = 1.0 - Counter(values).most_common(1)[0][1] / len(values)
    return out


def set_priorities(session: Session, priorities: Mapping[int, float]) -> int:
    """Write many items' priorities in one executemany; returns how many were given."""
    if priorities:
        session.connection().execute(
            _SET, [{"item_id": item_id, "new_priority": float(value)} for item_id, value in priorities.items()]
        )
    return len(priorities)


def reset_priorities(session: Session) -> int:
    """Every open ordinary item back to priority 0 (queue order)."""
    return (
        session.connection()
        .execute(update(AnnotationItem).where(*_open_train, col(AnnotationItem.priority) != 0.0).values(priority=0.0))
        .rowcount
    )
