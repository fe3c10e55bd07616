"""Serving and the counter (indexed statements) against the queue's rules written out in Python, on random stores."""

import random
from datetime import timedelta

from sqlalchemy import delete, insert
from sqlmodel import select

from storage import queue
from storage.db import session_scope
from storage.models import AnnotationItem, ItemClaim, Judgment, Prompt, User, utcnow

KINDS = ("pairwise", "rating")


def _random_store(session, rng: random.Random, users: list[int], prompt_id: int) -> None:
    """Items with tied priorities, every purpose, full and open ones; judgments, skips, live and expired claims."""
    for table in (ItemClaim, Judgment, AnnotationItem):
        session.execute(delete(table))
    now = utcnow()
    items = []
    for _ in range(rng.randint(0, 14)):
        purpose = rng.choice([queue.TRAIN] * 3 + [queue.GOLD, queue.SWAP_CHECK, queue.SWAP_CHECK])
        overlap = 1 if purpose == queue.SWAP_CHECK else rng.randint(1, 3)
        items.append(
            {
                "kind": rng.choice(KINDS),
                "prompt_id": prompt_id,
                "generation_ids": [1, 2],
                "overlap": overlap,
                "purpose": purpose,
                "priority": rng.choice([0.0, 0.0, 0.5, 1.0]),
                "judged_count": rng.randint(0, overlap),
                "created_at": now,
                "assigned_user_id": rng.choice(users) if purpose == queue.SWAP_CHECK else None,
            }
        )
    if items:
        session.execute(insert(AnnotationItem), items)
    item_ids = list(session.exec(select(AnnotationItem.id)).all())
    pairs = {(rng.choice(users), rng.choice(item_ids)) for _ in range(rng.randint(0, 12))} if item_ids else set()
    if pairs:
        session.execute(
            insert(Judgment),
            [
                {
                    "kind": rng.choice(["pairwise", "skip"]),
                    "user_id": user,
                    "prompt_id": prompt_id,
                    "item_id": item,
                    "generation_ids": [1, 2],
                    "payload": {},
                    "client_key": f"{user}-{item}",
                    "source": "app",
                    "created_at": now,
                }
                for user, item in sorted(pairs)
            ],
        )
    claims = {(rng.choice(users), rng.choice(item_ids)) for _ in range(rng.randint(0, 12))} if item_ids else set()
    if claims:
        session.execute(
            insert(ItemClaim),
            [
                {"user_id": user, "item_id": item, "expires_at": now + timedelta(seconds=rng.choice([-60, 600]))}
                for user, item in sorted(claims)
            ],
        )


def _expected(session, *, user_id: int, kind: str, now, gold_first: bool):
    """The rules of storage.queue, row by row: (served item id, done, skipped, remaining)."""
    items = session.exec(select(AnnotationItem)).all()
    judgments = session.exec(select(Judgment)).all()
    claims = [c for c in session.exec(select(ItemClaim)).all() if c.expires_at > now]
    judged = {j.item_id for j in judgments if j.user_id == user_id}
    open_to_user = [i for i in items if i.kind == kind and i.judged_count < i.overlap and i.id not in judged]

    def mine(item):
        return any(c.item_id == item.id and c.user_id == user_id for c in claims)

    def free(item):
        return item.judged_count + sum(c.item_id == item.id and c.user_id != user_id for c in claims) < item.overlap

    def ordinary(item):
        return item.purpose == queue.TRAIN or item.assigned_user_id == user_id

    def best(candidates):
        return min(candidates, key=lambda i: (-i.priority, i.id)).id if candidates else None

    served = best([i for i in open_to_user if mine(i)])
    if served is None:
        served = best([i for i in open_to_user if ordinary(i) and free(i)])
        if served is not None and gold_first:
            served = best([i for i in open_to_user if i.purpose == queue.GOLD and free(i)]) or served
    kinds = {i.id: i.kind for i in items}
    own = [j for j in judgments if j.user_id == user_id and kinds[j.item_id] == kind]
    return (
        served,
        sum(j.kind != "skip" for j in own),
        sum(j.kind == "skip" for j in own),
        sum(ordinary(i) for i in open_to_user),
    )


def test_serving_and_counter_follow_the_rules(db_url):
    rng = random.Random(7)
    with session_scope(db_url) as session:
        annotators = [User(username=f"u{i}") for i in range(3)]
        prompt = Prompt(text="p", content_hash="0" * 64)
        session.add_all([*annotators, prompt])
        session.flush()
        users, prompt_id = [user.id for user in annotators], prompt.id
    for _ in range(40):
        with session_scope(db_url) as session:
            _random_store(session, rng, users, prompt_id)
        for user_id in users:
            for kind in KINDS:
                for gold_first in (False, True):
                    with session_scope(db_url) as session:
                        now = utcnow()
                        served, done, skipped, remaining = _expected(
                            session, user_id=user_id, kind=kind, now=now, gold_first=gold_first
                        )
                        extras = queue.Extras(gold_rate=1.0) if gold_first else queue.NO_EXTRAS
                        item = queue.next_item(session, user_id=user_id, kind=kind, now=now, extras=extras)
                        assert (item.id if item else None) == served
                        progress = queue.progress(session, user_id=user_id, kind=kind)
                        assert progress == queue.Progress(done=done, skipped=skipped, remaining=remaining)
                        session.rollback()
