"""An annotator's history: undo gives the item back and frees its slot, an edit replaces the judgment, exports follow."""

import pytest
from sqlmodel import select

from feedback_app.annotation import open_edit, open_next, submit_and_next, undo_and_show
from feedback_app.roles import Caller
from feedback_app.state import Sealer
from feedback_app.tabs import compare, rate
from storage import history, queue
from storage.crud import StoreError
from storage.db import session_scope
from storage.export import ExportOptions, build_export
from storage.models import AnnotationItem, Judgment, WithdrawnJudgment
from tests.helpers import seed_store

SEALER = Sealer()


def caller(user_id: int, name: str = "ann") -> Caller:
    return Caller(id=user_id, username=name, role="annotator", is_active=True)


def judge_pair(session, user: Caller, choice: str, token: str | None = None):
    """Submit `choice` for the shown pair (or the item the token shows); the Shown of the next item."""
    if token is None:
        token = open_next(session, sealer=SEALER, user=user, kind="pairwise").token
    return submit_and_next(
        session, sealer=SEALER, user=user, kind="pairwise", token=token, judge=lambda v: compare.judge(v, choice)
    )


def prefer(session, user: Caller, text: str, shown=None):
    """Submit a vote for the response `text`, on whichever side it is shown (the shown item, else the next)."""
    shown = shown or open_next(session, sealer=SEALER, user=user, kind="pairwise")
    side = "A (left)" if shown.responses[0] == text else "B (right)"
    return judge_pair(session, user, side, token=shown.token)


def preference(url):
    with session_scope(url) as session:
        splits, manifest = build_export(session, ExportOptions(kind="preference", test_fraction=0.0))
    return [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in splits["train"]], manifest


def test_undo_withdraws_keeps_the_row_frees_the_slot_and_gives_the_item_back(db_url):
    seeded = seed_store(db_url, users=["ann", "bob"], prompts=2, enqueue=["pairwise"], overlap=1)
    ann, bob = caller(seeded.user_ids[0]), caller(seeded.user_ids[1], "bob")
    with session_scope(db_url) as session:
        shown = judge_pair(session, ann, "Tie")
        [entry] = history.recent(session, user_id=ann.id, kind="pairwise")
        assert entry.answer == "Tie" and entry.item_id is not None
        assert session.get_one(AnnotationItem, entry.item_id).judged_count == 1
        assert shown.item_id != entry.item_id  # the next item is the other one

        again = undo_and_show(session, sealer=SEALER, user=ann, kind="pairwise", judgment_id=entry.judgment_id)
        assert again.item_id == entry.item_id and again.token  # the item is back, on screen
        assert session.get(Judgment, entry.judgment_id) is None
        assert session.get_one(AnnotationItem, entry.item_id).judged_count == 0
        [kept] = history.withdrawn(session, user_id=ann.id)
        assert kept.judgment_id == entry.judgment_id and kept.replaced_by_id is None
        assert kept.judgment["payload"]["choice"] == "tie"  # the whole row is kept
        assert history.recent(session, user_id=ann.id, kind="pairwise") == []
        assert queue.progress(session, user_id=ann.id, kind="pairwise").done == 0
        assert queue.next_item(session, user_id=bob.id, kind="pairwise") is None  # ann holds both one-slot items
        with pytest.raises(StoreError, match="already withdrawn"):
            history.undo(session, user_id=ann.id, judgment_id=entry.judgment_id)
        judge_pair(session, ann, "Tie", token=again.token)
        [answered] = history.recent(session, user_id=ann.id, kind="pairwise")
        assert answered.answer == "Tie"


def test_only_your_own_standing_judgments_of_the_kind_can_be_taken_back(db_url):
    seeded = seed_store(db_url, users=["ann", "bob"], prompts=1, enqueue=["pairwise"], overlap=2)
    ann, bob = caller(seeded.user_ids[0]), caller(seeded.user_ids[1], "bob")
    with session_scope(db_url) as session:
        judge_pair(session, ann, "A (left)")
        [entry] = history.recent(session, user_id=ann.id, kind="pairwise")
        with pytest.raises(StoreError, match="not one of your judgments"):
            history.undo(session, user_id=bob.id, judgment_id=entry.judgment_id)
        with pytest.raises(StoreError, match="not rating"):
            history.undo(session, user_id=ann.id, judgment_id=entry.judgment_id, kind="rating")
        with pytest.raises(StoreError, match="not one of your judgments"):
            open_edit(session, sealer=SEALER, user=bob, kind="pairwise", judgment_id=entry.judgment_id)
        assert session.get(Judgment, entry.judgment_id) is not None


def test_an_edit_replaces_the_judgment_and_the_export_counts_only_the_new_answer(db_url):
    seeded = seed_store(db_url, users=["ann", "bob"], prompts=1, enqueue=["pairwise"], overlap=2)
    ann, bob = caller(seeded.user_ids[0]), caller(seeded.user_ids[1], "bob")
    with session_scope(db_url) as session:
        prefer(session, ann, "answer 0.0")
        prefer(session, bob, "answer 0.0")
    assert preference(db_url)[0] == [("answer 0.0", "answer 0.1")]

    with session_scope(db_url) as session:
        [old] = history.recent(session, user_id=ann.id, kind="pairwise")
        shown = open_edit(session, sealer=SEALER, user=ann, kind="pairwise", judgment_id=old.judgment_id)
        assert shown.editing == old.judgment_id and shown.item_id == old.item_id
        prefer(session, ann, "answer 0.1", shown=shown)
        prefer(session, ann, "answer 0.1", shown=shown)  # a double click stores it once
    with session_scope(db_url) as session:
        [new] = history.recent(session, user_id=ann.id, kind="pairwise")
        assert new.judgment_id != old.judgment_id
        [kept] = history.withdrawn(session, user_id=ann.id)
        assert (kept.judgment_id, kept.replaced_by_id) == (old.judgment_id, new.judgment_id)
        assert session.get_one(AnnotationItem, old.item_id).judged_count == 2  # the slot never changed hands
        assert len(session.exec(select(Judgment).where(Judgment.user_id == ann.id)).all()) == 1
    train, manifest = preference(db_url)
    assert train == []  # one vote each way: ann's edit counts, her first answer does not
    assert manifest["left_out"]["no_majority"] == 1


def test_an_edited_rating_is_counted_once(db_url):
    seeded = seed_store(db_url, users=["ann"], prompts=1, answers=1, enqueue=["rating"], overlap=1)
    ann = caller(seeded.user_ids[0])
    with session_scope(db_url) as session:
        token = open_next(session, sealer=SEALER, user=ann, kind="rating").token
        submit_and_next(
            session, sealer=SEALER, user=ann, kind="rating", token=token, judge=lambda v: rate.judge(v, "1", "")
        )
        [old] = history.recent(session, user_id=ann.id, kind="rating")
        token = open_edit(session, sealer=SEALER, user=ann, kind="rating", judgment_id=old.judgment_id).token
        submit_and_next(
            session, sealer=SEALER, user=ann, kind="rating", token=token, judge=lambda v: rate.judge(v, "5", "")
        )
    with session_scope(db_url) as session:
        splits, _ = build_export(session, ExportOptions(kind="unpaired", test_fraction=0.0))
        assert [row["label"] for row in splits["train"]] == [True]  # a mean of 5, not of 1 and 5
        assert session.exec(select(WithdrawnJudgment)).one().judgment["payload"] == {"score": 1}
