"""Reviewing versions: aligned side-by-side pages of two versions' responses, and blind A/B votes between them.

Blind votes live in their own table, apart from annotators' judgments, so
evaluating a version never feeds its own training data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.crud import StoreError, check_client_key, insert_or_ignore
from storage.models import PAIR_CHOICES, BlindVote, Generation, ModelVersion, Prompt


@dataclass(frozen=True)
class AlignedRow:
    """One prompt, with the first response of each version to it (and how many more each has)."""

    prompt_id: int
    prompt: str
    left_id: int
    left: str
    right_id: int
    right: str
    more_left: int
    more_right: int


@dataclass(frozen=True)
class AlignedPage:
    rows: list[AlignedRow]
    total: int  # prompts matching the search
    offset: int


def versions_with_responses(session: Session) -> list[ModelVersion]:
    """Versions that have at least one stored response, oldest first."""
    with_responses = select(Generation.model_version_id).where(col(Generation.model_version_id).is_not(None)).distinct()
    return list(
        session.exec(
            select(ModelVersion).where(col(ModelVersion.id).in_(with_responses)).order_by(col(ModelVersion.id))
        ).all()
    )


def _shared_prompts(session: Session, version_ids: Sequence[int], search: str = "") -> list[int]:
    query = (
        select(Generation.prompt_id)
        .where(col(Generation.model_version_id).in_(list(version_ids)))
        .group_by(col(Generation.prompt_id))
        .having(func.count(func.distinct(Generation.model_version_id)) == len(set(version_ids)))
        .order_by(col(Generation.prompt_id))
    )
    if search.strip():
        matching = select(Prompt.id).where(col(Prompt.text).contains(search.strip(), autoescape=True))
        query = query.where(col(Generation.prompt_id).in_(matching))
    return list(session.exec(query).all())


def aligned_page(
    session: Session,
    *,
    left_version_id: int,
    right_version_id: int,
    offset: int = 0,
    limit: int = 10,
    search: str = "",
    rng: random.Random | None = None,
) -> AlignedPage:
    """A page of prompts both versions answered (text search over prompts), one aligned row each.

    With `rng`, the page is a random sample of the matching prompts instead of the one at `offset`.
    """
    if left_version_id == right_version_id:
        raise StoreError("versions: pick two different versions to compare")
    if limit < 1 or offset < 0:
        raise StoreError("page: offset must be ≥ 0 and page size ≥ 1")
    matching = _shared_prompts(session, [left_version_id, right_version_id], search)
    if rng is not None:
        offset, prompt_ids = 0, sorted(rng.sample(matching, min(limit, len(matching))))
    else:
        offset = min(offset, max(0, (len(matching) - 1) // limit * limit))
        prompt_ids = matching[offset : offset + limit]
    generations = session.exec(
        select(Generation.id, Generation.prompt_id, Generation.model_version_id, Generation.text)
        .where(
            col(Generation.prompt_id).in_(prompt_ids),
            col(Generation.model_version_id).in_([left_version_id, right_version_id]),
        )
        .order_by(col(Generation.id))
    ).all()
    texts = dict(session.exec(select(Prompt.id, Prompt.text).where(col(Prompt.id).in_(prompt_ids))).all())
    rows = []
    for pid in prompt_ids:
        left = [(cast(int, g), t) for g, p, v, t in generations if p == pid and v == left_version_id]
        right = [(cast(int, g), t) for g, p, v, t in generations if p == pid and v == right_version_id]
        rows.append(
            AlignedRow(
                prompt_id=pid,
                prompt=texts[pid],
                left_id=left[0][0],
                left=left[0][1],
                right_id=right[0][0],
                right=right[0][1],
                more_left=len(left) - 1,
                more_right=len(right) - 1,
            )
        )
    return AlignedPage(rows=rows, total=len(matching), offset=offset)


def first_responses(
    session: Session, *, prompt_id: int, left_version_id: int, right_version_id: int
) -> tuple[Generation, Generation]:
    """The responses an aligned row shows for `prompt_id`: each version's first one."""
    picked = []
    for version_id in (left_version_id, right_version_id):
        generation = session.exec(
            select(Generation)
            .where(Generation.prompt_id == prompt_id, Generation.model_version_id == version_id)
            .order_by(col(Generation.id))
        ).first()
        if generation is None:
            raise StoreError(f"prompt: both versions must have answered prompt {prompt_id}")
        picked.append(generation)
    return picked[0], picked[1]


def blind_vote_count(session: Session, *, user_id: int) -> int:
    """Blind votes this reviewer has cast."""
    return int(session.exec(select(func.count()).where(col(BlindVote.user_id) == user_id)).one())


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
