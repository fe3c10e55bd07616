"""Active selection: the queue re-scored by a real reward model, by a given scorer, or back to queue order."""

from __future__ import annotations

import math

import pytest
import torch
from sqlmodel import select

from rlhf.models import registry
from rlhf.quality.selection import ImplicitRewardScorer, Prioritizer, RewardModelScorer, reward_model_path
from storage import priority, queue
from storage.crud import StoreError, add_prompt, create_user, get_or_create_generation
from storage.db import session_scope
from storage.models import AnnotationItem, ModelVersion, Round


def _queue(url, *, prompts=6, reward_model_dir=None, tmp_path=None):
    """v0 → v1 (made by a round that registered `reward_model_dir` as its reward model) → v2 (live, its round
    has no reward model)."""
    with session_scope(url) as session:
        user = create_user(session, username="ann", password="pw-for-tests").id
        v0 = ModelVersion(name="v0", base_model="tiny", artifact_path="/x", status="ready")
        session.add(v0)
        session.flush()
        parent = v0
        for name, work_dir in (("v1", None), ("v2", tmp_path / "round-2" if tmp_path else None)):
            row = Round(config_yaml="", status="succeeded", work_dir=str(work_dir) if work_dir else None)
            session.add(row)
            session.flush()
            if name == "v1" and reward_model_dir is not None:
                session.add(
                    ModelVersion(
                        name="v1-rm",
                        kind="reward",
                        base_model="tiny",
                        artifact_path=str(reward_model_dir),
                        status="ready",
                        parent_id=parent.id,
                        round_id=row.id,
                    )
                )
            version = ModelVersion(
                name=name,
                base_model="tiny",
                artifact_path="/x",
                status="ready",
                parent_id=parent.id,
                round_id=row.id,
                is_live=name == "v2",
            )
            session.add(version)
            session.flush()
            parent = version
        for p in range(prompts):
            prompt, _ = add_prompt(session, text=f"Question {p}: name a colour.")
            for g, text in enumerate(["Red.", "Blue is a colour of the sky and the sea."]):
                get_or_create_generation(
                    session, prompt_id=prompt.id, text=f"{text} ({p}.{g})", model_version_id=parent.id
                )
        items = queue.enqueue(session, kind="pairwise", version_id=parent.id, overlap=1)
        return user, [item.id for item in items]


def _served_order(url, user):
    order = []
    with session_scope(url) as session:
        while (item := queue.next_item(session, user_id=user, kind="pairwise")) is not None:
            order.append(item.id)
            queue.submit(
                session,
                item_id=item.id,
                user_id=user,
                generation_ids=item.generation_ids,
                payload={"choice": "a"},
                client_key=f"k{item.id}",
                shown_order=item.generation_ids,
            )
    return order


def test_uncertainty_serves_the_pair_nearest_a_coin_flip_first(sqlite_url, tmp_path):
    user, items = _queue(sqlite_url, tmp_path=tmp_path)
    p_a = dict(zip(items, [0.95, 0.52, 0.10, 0.70, 0.45, 0.99]))
    prioritizer = Prioritizer(sqlite_url, "uncertainty", scorer=lambda pairs: [p_a[p.item_id] for p in pairs])
    assert prioritizer.refresh() == f"uncertainty: scored {len(items)} open pairs with the given scorer"
    assert prioritizer.refresh() == "uncertainty: no new open pairs to score"
    expected = sorted(items, key=lambda i: abs(p_a[i] - 0.5))
    assert _served_order(sqlite_url, user) == expected


def test_the_live_lineage_reward_model_scores_the_queue(sqlite_url, tmp_path, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    from rlhf.models.modeling import load_tokenizer

    reward = tmp_path / "round-1" / "stages" / "reward"
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1).save_pretrained(reward)
    load_tokenizer(str(tiny_model_dir)).save_pretrained(reward)
    user, items = _queue(sqlite_url, reward_model_dir=reward, tmp_path=tmp_path)
    with session_scope(sqlite_url) as session:
        live = session.exec(select(ModelVersion).where(ModelVersion.is_live)).one()
        assert reward_model_path(session, live) == reward  # registered by the parent's round
        with pytest.raises(StoreError, match="is a reward model"):
            registry.set_live(session, name="v1-rm")
        pairs = priority.open_pairs(session)

    prioritizer = Prioritizer(sqlite_url, "uncertainty")
    assert prioritizer.refresh() == f"uncertainty: scored {len(items)} open pairs with the reward model"
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


def test_margin_serves_the_pair_furthest_from_a_coin_flip_first(sqlite_url, tmp_path):
    user, items = _queue(sqlite_url, tmp_path=tmp_path)
    p_a = dict(zip(items, [0.95, 0.52, 0.10, 0.70, 0.45, 0.99]))
    Prioritizer(sqlite_url, "margin", scorer=lambda pairs: [p_a[p.item_id] for p in pairs]).refresh()
    assert _served_order(sqlite_url, user) == sorted(items, key=lambda i: -abs(p_a[i] - 0.5))


def _logprob_one_by_one(model, tokenizer, prompt, completion):
    """log π(completion | prompt) for one unpadded sequence, the plain way."""
    messages = [{"role": "user", "content": prompt}]
    head = tokenizer(
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), add_special_tokens=False
    )["input_ids"]
    ids = tokenizer(
        tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": completion}], tokenize=False),
        add_special_tokens=False,
    )["input_ids"]
    with torch.no_grad():
        logps = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1].float(), -1)
    return sum(logps[i - 1, ids[i]].item() for i in range(len(head), len(ids)))


def test_the_live_policy_implicit_reward_scores_the_queue(sqlite_url, tmp_path, tiny_model_dir, tiny_lora_dir):
    with session_scope(sqlite_url) as session:
        user = create_user(session, username="ann", password="pw-for-tests").id
        root = ModelVersion(
            name="base", base_model=str(tiny_model_dir), artifact_path=str(tiny_model_dir), status="ready"
        )
        session.add(root)
        session.flush()
        live = ModelVersion(
            name="dpo-r1",
            base_model=str(tiny_model_dir),
            artifact_path=str(tiny_lora_dir),
            is_adapter=True,
            status="ready",
            parent_id=root.id,
            is_live=True,
        )
        session.add(live)
        session.flush()
        for p, texts in enumerate(
            [
                ("Red.", "Blue is a colour of the sky."),
                ("A much longer answer here", "No"),
                ("e e e e", "o o o o"),
                ("Yes.", "Yes, indeed it is."),
            ]
        ):
            prompt, _ = add_prompt(session, text=f"Question {p}?")
            for text in texts:
                get_or_create_generation(session, prompt_id=prompt.id, text=text, model_version_id=root.id)
        queue.enqueue(session, kind="pairwise", version_id=root.id, overlap=1)
        pairs = priority.open_pairs(session)

    scorer = ImplicitRewardScorer(live, root, batch_size=3)  # batches of 3 and 1: padding is exercised
    p_a = scorer(pairs)
    reversed_pairs = [priority.OpenPair(p.item_id, p.prompt, p.b, p.a) for p in pairs]
    assert scorer(reversed_pairs) == pytest.approx([1 - v for v in p_a], abs=1e-6)
    for pair, value in zip(pairs, p_a):
        ratio = {
            side: _logprob_one_by_one(scorer.policy, scorer.tokenizer, pair.prompt, text)
            - _logprob_one_by_one(scorer.reference, scorer.tokenizer, pair.prompt, text)
            for side, text in (("a", pair.a), ("b", pair.b))
        }
        assert value == pytest.approx(1 / (1 + math.exp(-0.1 * (ratio["a"] - ratio["b"]))), abs=1e-5)
    assert max(abs(v - 0.5) for v in p_a) > 0.01  # the adapter really changes the policy

    prioritizer = Prioritizer(sqlite_url, "margin", "policy")
    assert prioritizer.refresh() == f"margin: scored {len(pairs)} open pairs with the policy"
    with session_scope(sqlite_url) as session:
        stored = dict(session.exec(select(AnnotationItem.id, AnnotationItem.priority)).all())
    assert stored == pytest.approx({p.item_id: priority.margin(v) for p, v in zip(pairs, p_a)}, abs=1e-6)
    assert _served_order(sqlite_url, user)[0] == max(stored, key=stored.get)


def test_the_policy_scorer_needs_a_live_version_with_a_parent(sqlite_url, tiny_model_dir):
    with session_scope(sqlite_url) as session:
        session.add(
            ModelVersion(
                name="base",
                base_model=str(tiny_model_dir),
                artifact_path=str(tiny_model_dir),
                status="ready",
                is_live=True,
            )
        )
    assert Prioritizer(sqlite_url, "uncertainty", "policy").refresh() == (
        "uncertainty: the live version has no parent to measure its implicit reward against; queue order kept"
    )
    with pytest.raises(StoreError, match="queue.selection_scorer: 'oracle' is not one of reward_model, policy"):
        Prioritizer(sqlite_url, "margin", "oracle")
