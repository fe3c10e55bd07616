from datetime import timedelta

import pytest
from sqlmodel import select

from storage import queue
from storage.crud import StoreError
from storage.db import session_scope
from storage.models import AnnotationItem, Judgment, utcnow
from tests.helpers import seed_store


def _setup(url, *, prompts=3, per_prompt=4):
    seeded = seed_store(
        url, users=[f"u{i}" for i in range(4)], password="pw-for-tests", prompts=prompts, answers=per_prompt, live=False
    )
    return seeded.version_id, seeded.user_ids


def test_enqueue_groups_by_kind_and_never_twice(db_url):
    version_id, _ = _setup(db_url)
    with session_scope(db_url) as session:
        assert queue.enqueue_pairs(session, prompt_ids=None, version_id=version_id, overlap=2) == 6
        assert queue.enqueue_pairs(session, prompt_ids=None, version_id=version_id, overlap=2) == 0
        rankings = queue.enqueue(session, kind="ranking", version_id=version_id, overlap=1)
        assert [len(item.generation_ids) for item in rankings] == [4, 4, 4]
        ratings = queue.enqueue(session, kind="rating", version_id=version_id, overlap=1, prompt_ids=[1])
        assert len(ratings) == 4


def test_enqueue_mix_spreads_prompts_over_kinds(db_url):
    version_id, _ = _setup(db_url, prompts=8, per_prompt=4)
    with session_scope(db_url) as session:
        counts = queue.enqueue_mix(session, version_id=version_id, overlap=1, mix={"pairwise": 0.5, "ranking": 0.5})
    assert counts["ranking"] + counts["pairwise"] // 2 == 8  # every prompt used: one ranking or two pairs
    assert abs(counts["ranking"] - counts["pairwise"]) <= 2  # shares are of items
    with pytest.raises(StoreError, match="queue_mix: unknown kind 'essay'"), session_scope(db_url) as session:
        queue.enqueue_mix(session, version_id=version_id, overlap=1, mix={"essay": 1.0})


def test_enqueue_mix_gives_a_share_of_each_kinds_prompts_two_annotators(db_url):
    version_id, _ = _setup(db_url, prompts=8, per_prompt=4)
    with session_scope(db_url) as session:
        queue.enqueue_mix(
            session, version_id=version_id, overlap=1, mix={"pairwise": 1.0}, agreement_share=0.25, agreement_overlap=3
        )
        items = session.exec(select(AnnotationItem).order_by(AnnotationItem.id)).all()
        by_prompt = {item.prompt_id: item.overlap for item in items}
    assert list(by_prompt.values()) == [3, 1, 1, 1, 3, 1, 1, 1]  # evenly spread, the first prompt included
    with pytest.raises(StoreError, match="agreement_share: must be between 0 and 1"), session_scope(db_url) as session:
        queue.enqueue_mix(session, version_id=version_id, overlap=1, mix={"pairwise": 1.0}, agreement_share=2.0)


def test_overlap_claims_and_submit(db_url):
    version_id, users = _setup(db_url, prompts=1, per_prompt=2)
    with session_scope(db_url) as session:
        (item,) = queue.enqueue(session, kind="pairwise", version_id=version_id, overlap=2)
    with session_scope(db_url) as session:
        assert queue.next_item(session, user_id=users[0], kind="pairwise").id == item.id
        assert queue.next_item(session, user_id=users[0], kind="pairwise").id == item.id  # own claim comes back
        assert queue.next_item(session, user_id=users[1], kind="pairwise").id == item.id
        assert queue.next_item(session, user_id=users[2], kind="pairwise") is None  # two live claims fill it
    with session_scope(db_url) as session:
        ids = item.generation_ids
        _, created = queue.submit(
            session, item_id=item.id, user_id=users[0], generation_ids=ids, payload={"choice": "a"}, client_key="k0"
        )
        assert created
        _, created = queue.submit(
            session, item_id=item.id, user_id=users[0], generation_ids=ids, payload={"choice": "a"}, client_key="k0"
        )
        assert not created
        with pytest.raises(StoreError, match="already judged"):
            queue.submit(
                session,
                item_id=item.id,
                user_id=users[0],
                generation_ids=ids,
                payload={"choice": "b"},
                client_key="k0b",
            )
        with pytest.raises(StoreError, match="not item"):
            queue.submit(
                session,
                item_id=item.id,
                user_id=users[1],
                generation_ids=[ids[0], 999],
                payload={"choice": "b"},
                client_key="k1x",
            )
        assert queue.next_item(session, user_id=users[0], kind="pairwise") is None
    later = utcnow() + timedelta(seconds=queue.CLAIM_SECONDS + 1)
    with session_scope(db_url) as session:
        # users[1]'s claim expired: users[2] may take the open slot
        assert queue.next_item(session, user_id=users[2], kind="pairwise", now=later).id == item.id
        queue.submit(
            session, item_id=item.id, user_id=users[2], generation_ids=ids, payload={"choice": "tie"}, client_key="k2"
        )
        with pytest.raises(StoreError, match="already has its 2 judgments"):
            queue.submit(
                session, item_id=item.id, user_id=users[1], generation_ids=ids, payload={"choice": "b"}, client_key="k1"
            )
        assert sorted(queue.item_judges(session, item_id=item.id)) == [users[0], users[2]]


def test_skip_removes_item_for_that_user_only(db_url):
    version_id, users = _setup(db_url, prompts=2, per_prompt=1)
    with session_scope(db_url) as session:
        queue.enqueue(session, kind="rating", version_id=version_id, overlap=1, priority=0)
        first = session.get(AnnotationItem, 1)
        first.priority = 5.0
    with session_scope(db_url) as session:
        item = queue.next_item(session, user_id=users[0], kind="rating")
        assert item.id == 1  # priority first
        with pytest.raises(StoreError, match="reason"):
            queue.skip(session, item_id=item.id, user_id=users[0], reason=" ", client_key="s0")
        queue.skip(session, item_id=item.id, user_id=users[0], reason="unreadable", client_key="s0")
        assert queue.next_item(session, user_id=users[0], kind="rating").id == 2
        assert queue.next_item(session, user_id=users[1], kind="rating").id == 1
        assert queue.progress(session, user_id=users[0], kind="rating") == queue.Progress(
            done=0, skipped=1, remaining=1
        )
        skip = session.exec(__import__("sqlmodel").select(Judgment).where(Judgment.kind == "skip")).one()
        assert skip.payload == {"reason": "unreadable"}
