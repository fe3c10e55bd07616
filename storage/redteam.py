"""The adversarial set: prompts meant to break the model, and the failures people flagged.

A prompt enters the set when someone writes it in the Red-team tab or flags a response to it as a
failure. The fill answers the set's prompts first and queues their items ahead of the rest
(storage.queue), rounds repeat their rows `data.adversarial_weight` times (storage.export), and
evaluation reports the win-rate on the set apart from the general one (rlhf.training.evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.crud import StoreError, add_prompt, check_text
from storage.models import AdversarialPrompt, FailureFlag, Generation, Prompt

CATEGORIES = ("unsafe", "wrong", "refusal")
"""What a failure is: harmful content, a wrong answer, or a refusal (or apology) where help was due."""
ORIGINS = ("written", "flagged")
MAX_NOTE_CHARS = 2000
ADVERSARIAL_PRIORITY = 10.0
"""Added to an adversarial prompt's items' priority: above every selection score (0–1), so they come first."""


def _category(category: str | None) -> str:
    if category not in CATEGORIES:
        raise StoreError(f"category: pick one of {', '.join(CATEGORIES)} (got {category!r})")
    return category


def _note(note: str | None) -> str | None:
    note = (note or "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise StoreError(f"note: at most {MAX_NOTE_CHARS} characters, got {len(note)}")
    return note or None


def _enter(session: Session, prompt_id: int, origin: str, username: str) -> bool:
    """Put the prompt in the set (once: the first way in is kept); True if it was not in it yet."""
    if session.get(AdversarialPrompt, prompt_id) is not None:
        return False
    session.add(AdversarialPrompt(prompt_id=prompt_id, origin=origin, added_by=username))
    session.flush()
    return True


def write_prompt(session: Session, *, user_id: int, username: str, text: str) -> tuple[Prompt, bool]:
    """A red-teamer's prompt, stored (or found: the same text is one prompt) and put in the set; whether it is new
    to the set."""
    text = check_text(text, what="prompt").strip()
    if not text:
        raise StoreError("prompt: write the prompt that should break the model first")
    prompt, _ = add_prompt(session, text=text, source=f"red-team:{username}", tags=["adversarial"])
    assert prompt.id is not None  # flushed
    return prompt, _enter(session, prompt.id, "written", username)


def flag_generation(
    session: Session, *, user_id: int, username: str, generation_id: int, category: str | None, note: str | None = None
) -> FailureFlag:
    """Flag a stored candidate as a failure; its prompt joins the set. Flagging the same response again
    changes the category and note (one flag per person and response)."""
    generation = session.get(Generation, generation_id)
    if generation is None:
        raise StoreError(f"response: no response {generation_id}")
    flag = session.exec(
        select(FailureFlag).where(FailureFlag.generation_id == generation_id, FailureFlag.user_id == user_id)
    ).first() or FailureFlag(
        prompt_id=generation.prompt_id,
        generation_id=generation_id,
        model_version_id=generation.model_version_id,
        response=generation.text,
        category="",
        user_id=user_id,
    )
    flag.category, flag.note = _category(category), _note(note)
    session.add(flag)
    _enter(session, generation.prompt_id, "flagged", username)
    session.flush()
    return flag


def flag_tried_response(
    session: Session,
    *,
    user_id: int,
    username: str,
    prompt_id: int,
    response: str,
    version_id: int | None,
    category: str | None,
    note: str | None = None,
) -> FailureFlag:
    """Flag a response the live model gave in the Red-team tab (not a stored candidate: its text is kept)."""
    if session.get(Prompt, prompt_id) is None:
        raise StoreError(f"prompt: no prompt {prompt_id}")
    flag = FailureFlag(
        prompt_id=prompt_id,
        model_version_id=version_id,
        response=check_text(response, what="response"),
        category=_category(category),
        note=_note(note),
        user_id=user_id,
    )
    session.add(flag)
    _enter(session, prompt_id, "flagged", username)
    session.flush()
    return flag


def adversarial_prompt_ids(session: Session) -> set[int]:
    return set(session.exec(select(AdversarialPrompt.prompt_id)).all())


def is_adversarial():
    """A SQL expression true for prompts in the set: ordering by it puts them first."""
    return col(Prompt.id).in_(select(AdversarialPrompt.prompt_id))


@dataclass(frozen=True)
class AdversarialRow:
    prompt_id: int
    text: str
    origin: str
    added_by: str | None
    flags: int
    categories: str
    created_at: datetime


def adversarial_set(session: Session, *, limit: int = 200) -> list[AdversarialRow]:
    """The set, newest first, with how many failures were flagged on each prompt and of which kinds."""
    flags = dict(
        cast(
            "list[tuple[int, int]]",
            session.exec(
                select(FailureFlag.prompt_id, func.count()).group_by(col(FailureFlag.prompt_id))  # type: ignore[call-overload]
            ).all(),
        )
    )
    kinds: dict[int, set[str]] = {}
    for prompt_id, category in session.exec(select(FailureFlag.prompt_id, FailureFlag.category)).all():
        kinds.setdefault(prompt_id, set()).add(category)
    rows = session.exec(
        select(AdversarialPrompt, Prompt.text)
        .join(Prompt, col(Prompt.id) == AdversarialPrompt.prompt_id)
        .order_by(col(AdversarialPrompt.created_at).desc(), col(AdversarialPrompt.prompt_id).desc())
        .limit(limit)
    ).all()
    return [
        AdversarialRow(
            prompt_id=entry.prompt_id,
            text=text,
            origin=entry.origin,
            added_by=entry.added_by,
            flags=flags.get(entry.prompt_id, 0),
            categories=", ".join(sorted(kinds.get(entry.prompt_id, ()))),
            created_at=entry.created_at,
        )
        for entry, text in rows
    ]


def set_size(session: Session) -> int:
    return session.exec(select(func.count()).select_from(AdversarialPrompt)).one()
