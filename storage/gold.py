"""Gold items: questions with a known answer, queued among real work to check annotators.

A gold file is JSONL (or CSV/parquet), one item a line:
- pairwise: ``{"prompt": ..., "a": ..., "b": ..., "choice": "a"|"b"|"tie"|"both_bad"}``
- rating: ``{"prompt": ..., "response": ..., "score": 1..5}``
Each becomes an ``AnnotationItem`` with ``purpose="gold"`` and ``gold_answer`` ``{"choice": ...}`` or
``{"score": n}`` (the convention rlhf/analytics.py scores against), over version-less Generations.
The import is all or nothing, like storage/imports.py, whose readers and checks it reuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from storage.crud import content_hash
from storage.db import session_scope
from storage.imports import (
    _CHUNK,
    ImportFailed,
    ImportReport,
    RecordError,
    _ensure_generations,
    _ensure_prompts,
    checked,
    fail_if_bad,
    parse_records,
)
from storage.models import AnnotationItem, utcnow
from storage.records import GOLD as GOLD_RECORD
from storage.records import GOLD_ARMS, GoldPair, GoldRating

GOLD = "gold"
DEFAULT_OVERLAP = 50
"""Annotators each gold item is served to: gold is meant to be seen by (nearly) everyone."""


@dataclass
class _GoldItem:
    where: str
    record: GoldPair | GoldRating

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def prompt(self) -> str:
        return self.record.prompt

    @property
    def responses(self) -> list[str]:
        return self.record.responses

    @property
    def answer(self) -> dict[str, Any]:
        return self.record.answer


def _parse(where: str, record: dict[str, Any], errors: list[RecordError], lax: bool) -> _GoldItem | None:
    """A gold line may leave out `kind`: a, b and choice make it pairwise, response and score a rating."""
    if "kind" not in record:
        if {"a", "b", "choice"} & set(record):
            record = {**record, "kind": "pairwise"}
        elif {"response", "score"} & set(record):
            record = {**record, "kind": "rating"}
        else:
            errors.append(
                RecordError(
                    where,
                    "kind",
                    "cannot tell the item's kind: give a, b and choice (pairwise) or response and score (rating)",
                )
            )
            return None
    parsed = checked(GOLD_RECORD, where, record, errors, lax=lax, arms=GOLD_ARMS)
    return _GoldItem(where, parsed) if parsed is not None else None


def _same_item_twice(parsed: list[_GoldItem], errors: list[RecordError]) -> None:
    """The same question twice in one file must carry the same answer."""
    first: dict[tuple, _GoldItem] = {}
    for record in parsed:
        key = (record.kind, record.prompt, *record.responses)
        earlier = first.setdefault(key, record)
        if earlier is not record and earlier.answer != record.answer:
            field = "choice" if record.kind == "pairwise" else "score"
            errors.append(
                RecordError(
                    record.where,
                    field,
                    f"{record.answer[field]!r} contradicts {earlier.answer[field]!r} "
                    f"given for the same item at {earlier.where}",
                )
            )


def import_gold(path: str | Path, *, url: str | None = None, overlap: int = DEFAULT_OVERLAP) -> ImportReport:
    """Import gold items; an item already stored with the same answer is skipped, one with another answer fails."""
    path = Path(path)
    parsed, errors = parse_records(path, _parse)
    _same_item_twice(parsed, errors)
    if overlap < 1:
        errors.append(RecordError(str(path), "overlap", f"must be at least 1, got {overlap}"))
    fail_if_bad(path, parsed, errors, first_field="prompt")

    report = ImportReport(path=path, what="gold items", records=len(parsed))
    with session_scope(url) as session:
        prompt_ids = _ensure_prompts(session, [{"text": g.prompt, "source": path.name} for g in parsed]).by_hash
        generation_ids = _ensure_generations(session, parsed, prompt_ids)
        stored = _stored_gold(session, set(prompt_ids.values()))
        rows = []
        for gold in parsed:
            prompt_id = prompt_ids[content_hash(gold.prompt)]
            ids = [generation_ids[(prompt_id, content_hash(text))] for text in gold.responses]
            key = (gold.kind, prompt_id, tuple(ids))
            if key in stored:
                if stored[key] != gold.answer:
                    errors.append(
                        RecordError(
                            gold.where,
                            "choice" if gold.kind == "pairwise" else "score",
                            f"the store already has this gold item with answer {stored[key]}",
                        )
                    )
                report.duplicates += 1
                continue
            stored[key] = gold.answer
            rows.append(
                {
                    "kind": gold.kind,
                    "prompt_id": prompt_id,
                    "generation_ids": ids,
                    "overlap": overlap,
                    "purpose": GOLD,
                    "gold_answer": gold.answer,
                    "priority": 0.0,
                    "created_at": utcnow(),
                }
            )
        if errors:
            raise ImportFailed(path, errors)
        if rows:
            session.execute(insert(AnnotationItem), rows)
        report.created = len(rows)
    return report


def _stored_gold(session: Session, prompt_ids: set[int]) -> dict[tuple, Any]:
    """(kind, prompt id, generation ids) → answer of the gold items already stored for these prompts."""
    query = select(
        AnnotationItem.kind, AnnotationItem.prompt_id, AnnotationItem.generation_ids, AnnotationItem.gold_answer
    ).where(AnnotationItem.purpose == GOLD)
    ordered, found = sorted(prompt_ids), {}
    for start in range(0, len(ordered), _CHUNK):
        chunk = query.where(col(AnnotationItem.prompt_id).in_(ordered[start : start + _CHUNK]))
        found.update({(kind, prompt_id, tuple(ids)): answer for kind, prompt_id, ids, answer in session.exec(chunk)})
    return found
