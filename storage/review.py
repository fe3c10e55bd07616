"""Reviewing versions: side-by-side responses and blind A/B votes between two versions.

Blind votes live in their own table, apart from annotators' judgments, so
evaluating a version never feeds its own training data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.crud import StoreError, check_client_key, insert_or_ignore
from storage.models import PAIR_CHOICES, BlindVote, Generation, ModelVersion, Prompt


@dataclass(frozen=True)
class SideBySide:
    prompt_id: int
    prompt: str
    left: list[str]
    right: list[str]


def versions_with_responses(session: Session) -> list[ModelVersion]:
    """Versions that have at least one stored response, oldest first."""
    with_responses = select(Generation.model_version_id).where(col(Generation.model_version_id).is_not(None)).distinct()
    return list(
        session.exec(
            select(ModelVersion).where(col(ModelVersion.id).in_(with_responses)).order_by(col(ModelVersion.id))
        ).all()
    )


def _shared_prompts(session: Session, version_ids: Sequence[int]) -> list[int]:
    query = (
        select(Generation.prompt_id)
        .where(col(Generation.model_version_id).in_(list(version_ids)))
        .group_by(col(Generation.prompt_id))
        .having(func.count(func.distinct(Generation.model_version_id)) == len(set(version_ids)))
        .order_by(col(Generation.prompt_id))
    )
    return list(session.exec(query).all())


def side_by_side(session: Session, *, left_version_id: int, right_version_id: int, limit: int = 20) -> list[SideBySide]:
    """Prompts both versions answered, with each version's responses."""
    prompt_ids = _shared_prompts(session, [left_version_id, right_version_id])[:limit]
    rows = session.exec(
        select(Generation)
        .where(
            col(Generation.prompt_id).in_(prompt_ids),
            col(Generation.model_version_id).in_([left_version_id, right_version_id]),
        )
        .order_by(col(Generation.id))
    ).all()
    texts = {
        pid: text for pid, text in session.exec(select(Prompt.id, Prompt.text).where(col(Prompt.id).in_(prompt_ids)))
    }
    out = []
    for pid in prompt_ids:
        mine = [g for g in rows if g.prompt_id == pid]
        out.append(
            SideBySide(
                prompt_id=pid,
                prompt=texts[pid],
                left=[g.text for g in mine if g.model_version_id == left_version_id],
                right=[g.text for g in mine if g.model_version_id == right_version_id],
            )
        )
    return out


def blind_pair(
    session: Session, *, version_a_id: int, version_b_id: int, rng: random.Random
) -> tuple[Prompt, Generation, Generation] | None:
    """A random prompt both versions answered, with one response from each (a from version a)."""
    if version_a_id == version_b_id:
        raise StoreError("versions: pick two different versions to compare")
    prompt_ids = _shared_prompts(session, [version_a_id, version_b_id])
    if not prompt_ids:
        return None
    prompt_id = rng.choice(prompt_ids)
    pick = []
    for version_id in (version_a_id, version_b_id):
        options = session.exec(
            select(Generation).where(Generation.prompt_id == prompt_id, Generation.model_version_id == version_id)
        ).all()
        pick.append(rng.choice(list(options)))
    return session.get_one(Prompt, prompt_id), pick[0], pick[1]


def add_blind_vote(
    session: Session,
    *,
    user_id: int,
    generation_a_id: int,
    generation_b_id: int,
    shown_order: Sequence[int],
    choice: str,
    client_key: str,
) -> tuple[BlindVote, bool]:
    """Store one blind vote; a repeated `client_key` returns the stored vote and False."""
    if choice not in PAIR_CHOICES:
        raise StoreError(f"choice: {choice!r} is not one of {', '.join(PAIR_CHOICES)}")
    check_client_key(client_key)
    a, b = session.get(Generation, generation_a_id), session.get(Generation, generation_b_id)
    if a is None or b is None or a.prompt_id != b.prompt_id:
        raise StoreError("generations: a blind vote needs two responses to the same prompt")
    if a.model_version_id is None or b.model_version_id is None or a.model_version_id == b.model_version_id:
        raise StoreError("generations: a blind vote compares responses of two different versions")
    created = insert_or_ignore(
        session,
        BlindVote,
        dict(
            user_id=user_id,
            prompt_id=a.prompt_id,
            version_a_id=a.model_version_id,
            version_b_id=b.model_version_id,
            generation_a_id=a.id,
            generation_b_id=b.id,
            shown_order=list(shown_order),
            choice=choice,
            client_key=client_key,
        ),
        unique=["client_key"],
    )
    if created:
        return session.get_one(BlindVote, created[0]), True
    return session.exec(select(BlindVote).where(BlindVote.client_key == client_key)).one(), False


def blind_outcomes(session: Session) -> list[tuple[str, str]]:
    """(winner, loser) version names of every decisive blind vote; ties and both-bad are left out."""
    names = dict(session.exec(select(ModelVersion.id, ModelVersion.name)).all())
    outcomes = []
    for a, b, choice in session.exec(
        select(BlindVote.version_a_id, BlindVote.version_b_id, BlindVote.choice).order_by(col(BlindVote.id))
    ):
        if choice == "a":
            outcomes.append((names[a], names[b]))
        elif choice == "b":
            outcomes.append((names[b], names[a]))
    return outcomes
