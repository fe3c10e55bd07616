"""Quality checks mixed into the queue (gold items, swap checks) and priority-ordered serving."""

from __future__ import annotations

import json
import random
import re

import pytest
from pydantic import ValidationError
from sqlmodel import select

from rlhf.quality.analytics import annotator_report
from storage import priority, queue
from storage.crud import add_prompt, get_or_create_generation
from storage.db import session_scope
from storage.export import ExportOptions, build_export
from storage.gold import import_gold
from storage.models import AnnotationItem, Judgment, ModelVersion
from tests.helpers import seed_store


def _store(url, *, prompts, overlap=1, users=2):
    """A version with two responses per prompt, one pairwise item per prompt, and `users` annotators."""
    seeded = seed_store(
        url,
        users=[f"u{i}" for i in range(users)],
        password="pw-for-tests",
        prompts=prompts,
        live=False,
        enqueue=["pairwise"],
        overlap=overlap,
    )
    return seeded.user_ids, seeded.item_ids


def _judge(url, user_id, *, extras=queue.NO_EXTRAS, answer=lambda item, shown: "left", key=""):
    """Serve one item and answer it as shown; returns (item, shown order, stored choice) or None."""
    with session_scope(url) as session:
        item = queue.next_item(session, user_id=user_id, kind="pairwise", extras=extras)
        if item is None:
            return None
        shown = list(item.generation_ids)
        side = answer(item, shown)
        winner = shown[0 if side == "left" else 1]
        choice = "a" if winner == item.generation_ids[0] else "b"
        queue.submit(
            session,
            item_id=item.id,
            user_id=user_id,
            generation_ids=item.generation_ids,
            payload={"choice": choice},
            client_key=f"{key}{user_id}-{item.id}",
            shown_order=shown,
            duration_ms=1000,
        )
        return item, shown, choice


def _gold_file(tmp_path, n):
    path = tmp_path / "gold.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": f"gold {i}?", "a": f"right {i}", "b": f"wrong {i}", "choice": "a"}) + "\n"
            for i in range(n)
        )
    )
    return path


def _report(url):
    with session_scope(url) as session:
        return {row.user_id: row for row in annotator_report(session)}


def test_gold_items_are_served_at_the_configured_rate_and_scored(db_url, tmp_path):
    (me, other), _ = _store(db_url, prompts=200, overlap=2)
    import_gold(_gold_file(tmp_path, 120), url=db_url)
    extras = queue.Extras(gold_rate=0.2, rng=random.Random(0))
    served, gold_right, gold_seen = [], 0, []

    def answer(item, shown):
        nonlocal gold_right
        if item.purpose != queue.GOLD:
            return "left"
        gold_seen.append(item.id)
        correct = len(gold_seen) % 5 != 0  # four of every five gold items right
        gold_right += correct
        right_side = shown.index(item.generation_ids[0])
        return ["left", "right"][right_side if correct else 1 - right_side]

    while (result := _judge(db_url, me, extras=extras, answer=answer)) is not None:
        served.append(result[0])

    assert sum(item.purpose == queue.TRAIN for item in served) == 200  # every ordinary item, once
    assert len({item.id for item in served}) == len(served)
    rate = len(gold_seen) / len(served)
    assert 0.15 <= rate <= 0.25, rate
    stats = _report(db_url)[me]
    assert stats.gold_judgments == len(gold_seen) > 30
    assert stats.gold_accuracy == pytest.approx(gold_right / len(gold_seen))
    assert "gold_failures" not in stats.flags

    # Without extras gold is never served; the counter and the filler's low-water mark leave it out.
    with session_scope(db_url) as session:
        assert queue.progress(session, user_id=other, kind="pairwise").remaining == 200
        assert queue.open_count(session) == 200
    while (result := _judge(db_url, other)) is not None:
        assert result[0].purpose == queue.TRAIN


def test_rating_gold_is_served_in_the_rating_queue_and_scored_within_tolerance(db_url, tmp_path):
    (me, _), _ = _store(db_url, prompts=0)
    with session_scope(db_url) as session:
        version = session.exec(select(ModelVersion)).one()
        for p in range(40):
            prompt, _ = add_prompt(session, text=f"rate {p}")
            get_or_create_generation(session, prompt_id=prompt.id, text=f"to rate {p}", model_version_id=version.id)
        queue.enqueue(session, kind="rating", version_id=version.id, overlap=1)
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "".join(
            json.dumps({"prompt": f"rating gold {i}?", "response": f"known {i}", "score": 4}) + "\n" for i in range(10)
        )
    )
    import_gold(gold, url=db_url)
    given = iter([4, 5, 3, 1, 2, 4, 4, 5, 1, 4])  # within ±1 of 4 except the 1s and the 2: 7 of 10
    extras = queue.Extras(gold_rate=0.5, rng=random.Random(1))
    gold_scores = []
    while True:
        with session_scope(db_url) as session:
            item = queue.next_item(session, user_id=me, kind="rating", extras=extras)
            if item is None:
                break
            score = next(given, 4) if item.purpose == queue.GOLD else 3
            if item.purpose == queue.GOLD:
                gold_scores.append(score)
            queue.submit(
                session,
                item_id=item.id,
                user_id=me,
                generation_ids=item.generation_ids,
                payload={"score": score},
                client_key=f"r{item.id}",
                duration_ms=500,
            )

    assert len(gold_scores) == 10
    stats = _report(db_url)[me]
    assert stats.gold_judgments == 10
    assert stats.gold_accuracy == pytest.approx(0.7)
    assert "gold_failures" not in stats.flags


def test_gold_is_only_mixed_into_ordinary_work(db_url, tmp_path):
    (me, _), _ = _store(db_url, prompts=0)
    import_gold(_gold_file(tmp_path, 5), url=db_url)
    with session_scope(db_url) as session:
        assert queue.next_item(session, user_id=me, kind="pairwise", extras=queue.Extras(gold_rate=1.0)) is None


def test_a_swap_check_repeats_an_older_pair_with_sides_swapped(db_url):
    (me, other), item_ids = _store(db_url, prompts=12, overlap=2)
    extras = queue.Extras(swap_rate=0.5, swap_gap=3, rng=random.Random(3))
    history, checks = {}, []
    while (result := _judge(db_url, me, extras=extras)) is not None:  # always picks the left side
        item, shown, _ = result
        if item.purpose == queue.SWAP_CHECK:
            checks.append((item, shown))
        else:
            history[item.id] = shown

    assert sorted(history) == sorted(item_ids)  # each ordinary item served once
    assert len(checks) >= 3
    with session_scope(db_url) as session:
        judged = {j.id: j for j in session.exec(select(Judgment).where(Judgment.user_id == me))}
        later = sorted(judged)
        for item, shown in checks:
            row = session.get(AnnotationItem, item.id)
            source = judged[row.source_judgment_id]
            assert row.assigned_user_id == me and row.overlap == 1 and row.judged_count == 1
            assert shown == list(reversed(history[source.item_id]))
            check_judgment = next(j for j in judged.values() if j.item_id == item.id)
            newer = [j for j in later if source.id < j < check_judgment.id and judged[j].kind == "pairwise"]
            assert len(newer) >= 3  # shown again later, not right away
        sources = {session.get(AnnotationItem, item.id).source_judgment_id for item, _ in checks}
        assert len(sources) == len(checks)  # each judgment is checked once at most
        originals = session.exec(select(AnnotationItem).where(AnnotationItem.id.in_(item_ids))).all()
        assert all(item.judged_count == 1 for item in originals)

    stats = _report(db_url)[me]
    assert stats.swapped_pairs == len(checks)
    assert stats.swap_inconsistency == 1.0  # picking the left side flips every swapped answer
    assert "swap_inconsistent" in stats.flags

    # Another annotator gets the second slot of every ordinary item and none of my swap checks.
    seen = []
    while (result := _judge(db_url, other)) is not None:
        seen.append(result[0])
    assert sorted(item.id for item in seen) == sorted(item_ids)


def test_a_consistent_swap_check_does_not_count_twice_in_export(db_url):
    (me, other), (first_id, _) = _store(db_url, prompts=2, overlap=2)
    item, first_shown, _ = _judge(db_url, me, answer=lambda item, shown: "left")
    assert item.id == first_id
    winner = first_shown[0]
    extras = queue.Extras(swap_rate=1.0, swap_gap=0, rng=random.Random(0))
    check, shown, _ = _judge(
        db_url, me, extras=extras, answer=lambda item, shown: "left" if shown[0] == winner else "right"
    )
    assert check.purpose == queue.SWAP_CHECK and shown == list(reversed(first_shown))
    item, _, _ = _judge(db_url, other, answer=lambda item, shown: "left" if shown[0] != winner else "right")
    assert item.id == first_id

    with session_scope(db_url) as session:
        rows, manifest = build_export(session, ExportOptions(kind="preference", test_fraction=0.0))
        stats = {row.user_id: row for row in annotator_report(session)}
    assert manifest["left_out"].get("no_majority") == 1  # my two votes count once: 1 vs 1, no majority
    assert rows["train"] == []
    assert stats[me].swapped_pairs == 1 and stats[me].swap_inconsistency == 0.0


def test_disagreement_priorities_serve_contested_items_first(db_url):
    (a, b, c), (calm, agreed, contested) = _store(db_url, prompts=3, overlap=3, users=3)
    # a and b each judge the three items in queue order; they disagree on the last one only
    for user, choices in ((a, "aaa"), (b, "aab")):
        for choice in choices:
            with session_scope(db_url) as session:
                item = queue.next_item(session, user_id=user, kind="pairwise")
                queue.submit(
                    session,
                    item_id=item.id,
                    user_id=user,
                    generation_ids=item.generation_ids,
                    payload={"choice": choice},
                    client_key=f"{user}-{item.id}",
                    shown_order=item.generation_ids,
                )
    with session_scope(db_url) as session:
        scores = priority.disagreement_priorities(session)
        assert scores == {calm: 0.0, agreed: 0.0, contested: pytest.approx(0.5)}
        priority.set_priorities(session, scores)
    with session_scope(db_url) as session:
        assert queue.next_item(session, user_id=c, kind="pairwise").id == contested


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"gold_rate": 1.5}, "gold_rate"),
        ({"swap_rate": -0.1}, "swap_rate"),
        ({"swap_gap": -1}, "swap_gap"),
        ({"gold_rate": 0.6, "swap_rate": 0.6}, "gold_rate + swap_rate must be at most 1"),
        ({"gold_rte": 0.1}, "gold_rte"),
    ],
)
def test_extras_refuse_rates_that_leave_no_room_for_work(options, problem):
    with pytest.raises(ValidationError, match=re.escape(problem)):
        queue.Extras(**options)
