"""Batched candidate generation into the store: counts, version links, idempotent reruns, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sqlalchemy import func
from sqlmodel import select

from rlhf.cli import main
from rlhf.inference.generation import generate_candidates, generate_texts
from rlhf.models.artifacts import load_version
from rlhf.models.registry import get_version, register_artifact, register_version
from storage.crud import StoreError, add_prompt
from storage.db import dispose_engines, session_scope
from storage.migrate import upgrade
from storage.models import Generation, ModelVersion, Prompt

PROMPTS_FILE = Path(__file__).parents[2] / "rlhf" / "demo" / "data" / "prompts.jsonl"


@pytest.fixture
def store(sqlite_url, tiny_model_dir, tiny_lora_dir):
    """20 prompts, the tiny base and a LoRA child registered."""
    lines = PROMPTS_FILE.read_text().splitlines()[:20]
    with session_scope(sqlite_url) as session:
        for line in lines:
            add_prompt(session, text=json.loads(line)["prompt"])
        register_artifact(session, source=str(tiny_model_dir), name="base", make_live=True)
        register_artifact(session, source=str(tiny_lora_dir), name="r1", kind="dpo", parent="base")
    return sqlite_url


def _counts(url):
    with session_scope(url) as session:
        rows = session.exec(
            select(Generation.prompt_id, Generation.model_version_id, func.count()).group_by(
                Generation.prompt_id, Generation.model_version_id
            )
        ).all()
    return {(prompt_id, version_id): n for prompt_id, version_id, n in rows}


def test_generates_n_per_prompt_linked_to_the_version_and_reruns_nothing(store):
    created = generate_candidates(
        store,
        version_name="base",
        per_prompt=3,
        batch_size=16,
        max_new_tokens=8,
        temperature=1.0,
        top_p=0.9,
        seed=5,
        progress=False,
    )
    assert created == 60
    with session_scope(store) as session:
        base_id = session.exec(select(Prompt.id)).all()
        rows = session.exec(select(Generation)).all()
        version_ids = {row.model_version_id for row in rows}
        assert len(version_ids) == 1
        for row in rows:
            assert row.params["max_new_tokens"] == 8 and row.params["top_p"] == 0.9
            assert row.params["temperature"] == 1.0 and "seed" in row.params
            assert row.text and "<|im_start|>" not in row.text and "<|pad|>" not in row.text
    counts = _counts(store)
    assert len(counts) == 20 and set(counts.values()) == {3}
    assert {prompt_id for prompt_id, _ in counts} == set(base_id)

    assert generate_candidates(store, version_name="base", per_prompt=3, max_new_tokens=8, progress=False) == 0
    assert _counts(store) == counts

    # Asking for more tops each prompt up; another version gets its own candidates.
    assert generate_candidates(store, version_name="base", per_prompt=4, max_new_tokens=8, progress=False) == 20
    assert generate_candidates(store, version_name="r1", per_prompt=1, max_new_tokens=8, progress=False) == 20
    by_version = {}
    for (_, version_id), n in _counts(store).items():
        by_version.setdefault(version_id, set()).add(n)
    assert sorted(map(sorted, by_version.values())) == [[1], [4]]


def test_batched_output_is_only_the_new_tokens_of_each_prompt(store, tiny_model_dir):
    """Greedy, batched and left-padded, each text equals that prompt generated alone."""
    with session_scope(store) as session:
        prompts = [p.text for p in session.exec(select(Prompt).order_by(Prompt.id).limit(6))]
        version = get_version(session, name="r1")
    model, tokenizer = load_version(version)
    batched = generate_texts(model, tokenizer, prompts, max_new_tokens=10, temperature=0, top_p=1.0, seed=None)
    for prompt, text in zip(prompts, batched):
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        with torch.no_grad():
            alone = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=10,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        assert text == tokenizer.decode(alone[0, ids.shape[1] :], skip_special_tokens=True).strip()
        assert prompt not in text


def test_same_seed_same_candidates(tiny_model_dir, tmp_path):
    texts = []
    for copy in ("a", "b"):
        url = f"sqlite:///{tmp_path / copy}.db"
        upgrade(url)
        with session_scope(url) as session:
            for i in range(5):
                add_prompt(session, text=f"Tell me about item {i}.")
            register_artifact(session, source=str(tiny_model_dir), name="base")
        generate_candidates(url, version_name="base", per_prompt=2, max_new_tokens=6, seed=11, progress=False)
        with session_scope(url) as session:
            texts.append(sorted(session.exec(select(Generation.text)).all()))
    dispose_engines()
    assert texts[0] == texts[1]


def test_refuses_unknown_or_unready_versions_and_bad_sampling(store):
    with pytest.raises(StoreError, match="nosuch"):
        generate_candidates(store, version_name="nosuch", progress=False)
    with session_scope(store) as session:
        register_version(session, name="broken", base_model="m", artifact_path="m", status="failed")
    with pytest.raises(StoreError, match="failed"):
        generate_candidates(store, version_name="broken", progress=False)
    with pytest.raises(StoreError, match="top_p"):
        generate_candidates(store, version_name="base", top_p=0, progress=False)
    with pytest.raises(StoreError, match="greedy"):
        generate_candidates(store, version_name="base", per_prompt=2, temperature=0, progress=False)
    assert _counts(store) == {}


def test_generate_command(store, tmp_path, capsys):
    config = tmp_path / "app.yaml"
    config.write_text("generation:\n  per_prompt: 1\n  max_new_tokens: 5\n")
    code = main(["generate", "--model", "base", "--config", str(config), "--batch-size", "7", "--db", store])
    out = capsys.readouterr().out
    assert code == 0 and "generated 20 new candidates with base" in out
    with session_scope(store) as session:
        params = session.exec(select(Generation.params)).all()
    assert {p["max_new_tokens"] for p in params} == {5} and {p["batch_size"] for p in params} == {7}

    code = main(["generate", "--model", "base", "--per-prompt", "1", "--config", str(config), "--db", store])
    assert code == 0 and "generated 0 new" in capsys.readouterr().out

    config.write_text("generation:\n  per_promt: 1\n")
    code = main(["generate", "--model", "base", "--config", str(config), "--db", store])
    err = capsys.readouterr().err
    assert code == 2 and str(config) in err and "generation.per_promt" in err


def test_a_multi_turn_prompt_is_templated_with_all_its_turns(store):
    turns = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "2."},
        {"role": "user", "content": "Another?"},
    ]
    with session_scope(store) as session:
        version = get_version(session, name="base")
    model, tokenizer = load_version(version)
    seen: list = []
    template = tokenizer.apply_chat_template

    def recording(conversations, **kwargs):
        seen.extend(conversations)
        return template(conversations, **kwargs)

    tokenizer.apply_chat_template = recording
    [text] = generate_texts(model, tokenizer, [turns], max_new_tokens=4, temperature=0, top_p=1.0, seed=None)
    assert seen == [turns]
    alone = template(turns, add_generation_prompt=True, tokenize=False)
    assert "Be brief." in alone and "Name a prime." in alone and "Another?" in alone


def test_prompts_are_batched_by_length_and_each_answer_lands_on_its_own_prompt(sqlite_url):
    from rlhf.inference.generation import answer_prompts
    from tests.helpers import seed_store

    lengths = [37, 5, 80, 12, 6, 60, 1, 44, 23, 70, 9, 31]
    seeded = seed_store(sqlite_url, prompts=len(lengths), answers=0, prompt_text=lambda p: "x" * lengths[p])
    batches = []

    def generate(prompts, seed):
        batches.append([len(p) for p in prompts])
        return [f"answer to a prompt of {len(p)} characters, #{seed}.{i}" for i, p in enumerate(prompts)]

    with session_scope(sqlite_url) as session:
        version = session.get_one(ModelVersion, seeded.version_id)
        answer_prompts(session, version=version, generate=generate, per_prompt=2, params={}, batch_size=5, attempts=1)
        stored = session.exec(select(Generation.text, Prompt.text).join(Prompt)).all()
    assert [n for batch in batches for n in batch] == sorted(n for n in lengths for _ in range(2))
    assert [len(batch) for batch in batches] == [5, 5, 5, 5, 4]
    assert len(stored) == 24
    assert all(answer.startswith(f"answer to a prompt of {len(prompt)} characters") for answer, prompt in stored)
