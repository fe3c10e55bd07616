"""Active selection: the queue re-scored by a real reward model, by a given scorer, or back to queue order."""

from __future__ import annotations

import pytest
import torch
from sqlmodel import select

from rlhf.selection import Prioritizer, RewardModelScorer, reward_model_path
from storage import priority, queue
from storage.crud import StoreError, add_prompt, create_user, get_or_create_generation
from storage.db import session_scope
from storage.models import AnnotationItem, ModelVersion, Round


def _queue(url, *, prompts=6, live_round_dir=None, tmp_path=None):
    """v0 → v1 (made by a round whose work dir is `live_round_dir`) → v2 (live, its round has no reward model)."""
    with session_scope(url) as session:
        user = create_user(session, username="ann", password="pw").id
        v0 = ModelVersion(name="v0", base_model="tiny", artifact_path="/x", status="ready")
        session.add(v0)
        session.flush()
        parent = v0
        for name, work_dir in (("v1", live_round_dir), ("v2", tmp_path / "round-2" if tmp_path else None)):
            row = Round(config_yaml="", status="succeeded", work_dir=str(work_dir) if work_dir else None)
            session.add(row)
            session.flush()
            version = ModelVersion(name=name, base_model="tiny", artifact_path="/x", status="ready",
                                   parent_id=parent.id, round_id=row.id, is_live=name == "v2")
            session.add(version)
            session.flush()
            parent = version
        for p in range(prompts):
            prompt, _ = add_prompt(session, text=f"Question {p}: name a colour.")
            for g, text in enumerate(["Red.", "Blue is a colour of the sky and the sea."]):
                get_or_create_generation(session, prompt_id=prompt.id, text=f"{text} ({p}.{g})",
                                         model_version_id=parent.id)
        items = queue.enqueue(session, kind="pairwise", version_id=parent.id, overlap=1)
        return user, [item.id for item in items]


def _served_order(url, user):
    order = []
    with session_scope(url) as session:
        while (item := queue.next_item(session, user_id=user, kind="pairwise")) is not None:
            order.append(item.id)
            queue.submit(session, item_id=item.id, user_id=user, generation_ids=item.generation_ids,
                         payload={"choice": "a"}, client_key=f"k{item.id}", shown_order=item.generation_ids)
    return order


def test_uncertainty_serves_the_pair_nearest_a_coin_flip_first(sqlite_url, tmp_path):
    user, items = _queue(sqlite_url, tmp_path=tmp_path)
    p_a = dict(zip(items, [0.95, 0.52, 0.10, 0.70, 0.45, 0.99]))
    prioritizer = Prioritizer(sqlite_url, "uncertainty", scorer=lambda pairs: [p_a[p.item_id] for p in pairs])
    assert prioritizer.refresh() == f"uncertainty: scored {len(items)} open pairs"
    assert prioritizer.refresh() == "uncertainty: no new open pairs to score"
    expected = sorted(items, key=lambda i: abs(p_a[i] - 0.5))
    assert _served_order(sqlite_url, user) == expected


def test_the_live_lineage_reward_model_scores_the_queue(sqlite_url, tmp_path, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    from rlhf.modeling import load_tokenizer

    reward = tmp_path / "round-1" / "stages" / "reward"
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1).save_pretrained(reward)
    load_tokenizer(str(tiny_model_dir)).save_pretrained(reward)
    user, items = _queue(sqlite_url, live_round_dir=tmp_path / "round-1", tmp_path=tmp_path)
    with session_scope(sqlite_url) as session:
        live = session.exec(select(ModelVersion).where(ModelVersion.is_live)).one()
        assert reward_model_path(session, live) == reward      # found on the parent's round
        pairs = priority.open_pairs(session)

    prioritizer = Prioritizer(sqlite_url, "uncertainty")
    assert prioritizer.refresh() == f"uncertainty: scored {len(items)} open pairs"
    expected = {p.item_id: priority.uncertainty(v) for p, v in zip(pairs, RewardModelScorer(reward)(pairs))}
    assert len(set(round(v, 6) for v in expected.values())) > 1
    with session_scope(sqlite_url) as session:
        stored = dict(session.exec(select(AnnotationItem.id, AnnotationItem.priority)).all())
    assert stored == pytest.approx(expected)
    assert _served_order(sqlite_url, user)[0] == max(expected, key=expected.get)


def test_without_a_reward_model_or_with_random_selection_queue_order_holds(sqlite_url, tmp_path):
    user, items = _queue(sqlite_url, tmp_path=tmp_path)
    assert "no reward model" in Prioritizer(sqlite_url, "uncertainty").refresh()
    with session_scope(sqlite_url) as session:
        priority.set_priorities(session, {items[-1]: 0.9})
    assert Prioritizer(sqlite_url, "random").refresh() == "random: 1 items back to queue order"
    assert _served_order(sqlite_url, user) == items
    with pytest.raises(StoreError, match="queue.selection: 'smart' is not one of"):
        Prioritizer(sqlite_url, "smart")
