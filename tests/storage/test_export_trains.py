"""Each export kind, loaded with `datasets`, trains the real TRL trainer it is for — no glue code."""

import json
import random
import shutil

import pytest
import torch
from datasets import load_dataset

from rlhf.cli import main

TOPICS = ["coffee", "the moon", "trains", "gardening", "rain", "bread", "kites", "rivers"]


@pytest.fixture
def exported(sqlite_url, tmp_path):
    """A store with pairwise, rating and correction judgments, exported in each kind as JSONL via the CLI."""
    rng = random.Random(0)
    records = []
    for topic in TOPICS:
        prompt = f"Tell me about {topic}."
        good, bad = f"{topic} is calm and bright.", f"no {topic}."
        for annotator in ("u1", "u2", "u3"):
            records.append(
                {
                    "kind": "pairwise",
                    "annotator": annotator,
                    "prompt": prompt,
                    "a": good,
                    "b": bad,
                    "choice": rng.choice("aab"),
                }
            )
        records.append({"kind": "rating", "annotator": "u1", "prompt": prompt, "response": good, "score": 5})
        records.append({"kind": "rating", "annotator": "u1", "prompt": prompt, "response": bad, "score": 1})
        records.append(
            {
                "kind": "correction",
                "annotator": "u2",
                "prompt": prompt,
                "response": bad,
                "corrected": f"{topic} is lovely.",
            }
        )
    path = tmp_path / "judgments.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert main(["judgments", "import", str(path), "--db", sqlite_url]) == 0
    folders = {}
    for kind in ("sft", "preference", "unpaired", "prompt"):
        folders[kind] = tmp_path / f"export-{kind}"
        assert (
            main(["export", "--kind", kind, "--out", str(folders[kind]), "--test-fraction", "0.2", "--db", sqlite_url])
            == 0
        )
    return folders


def load_train(folder):
    return load_dataset("json", data_files={"train": str(folder / "train.jsonl")})["train"]


def common_args(out):
    return dict(
        output_dir=str(out),
        max_steps=3,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        report_to=[],
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        logging_steps=1,
    )


def snapshot_params(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed(before, model):
    return any(not torch.equal(before[name], p.detach()) for name, p in model.named_parameters())


def policy(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = tmp_path / "policy"
    shutil.copytree(tiny_model_dir, local)
    return local, AutoModelForCausalLM.from_pretrained(local), AutoTokenizer.from_pretrained(local)


def test_sft_export_trains_sfttrainer(exported, tiny_model_dir, tmp_path):
    from trl import SFTConfig, SFTTrainer

    _, model, tokenizer = policy(tiny_model_dir, tmp_path)
    dataset = load_train(exported["sft"])
    assert set(dataset.column_names) == {"prompt", "completion"}
    before = snapshot_params(model)
    trainer = SFTTrainer(
        model=model, args=SFTConfig(**common_args(tmp_path / "out")), train_dataset=dataset, processing_class=tokenizer
    )
    trainer.train()
    assert changed(before, model)


def test_preference_export_trains_dpotrainer_and_rewardtrainer(exported, tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

    path, model, tokenizer = policy(tiny_model_dir, tmp_path)
    dataset = load_train(exported["preference"])
    assert set(dataset.column_names) == {"prompt", "chosen", "rejected"}
    before = snapshot_params(model)
    DPOTrainer(
        model=model, args=DPOConfig(**common_args(tmp_path / "dpo")), train_dataset=dataset, processing_class=tokenizer
    ).train()
    assert changed(before, model)

    reward_model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    reward_model.config.pad_token_id = tokenizer.pad_token_id
    before = snapshot_params(reward_model)
    RewardTrainer(
        model=reward_model,
        args=RewardConfig(**common_args(tmp_path / "rm")),
        train_dataset=dataset,
        processing_class=tokenizer,
    ).train()
    assert changed(before, reward_model)


def test_unpaired_export_trains_ktotrainer(exported, tiny_model_dir, tmp_path):
    from trl import KTOConfig, KTOTrainer

    _, model, tokenizer = policy(tiny_model_dir, tmp_path)
    dataset = load_train(exported["unpaired"])
    assert set(dataset.column_names) == {"prompt", "completion", "label"}
    assert set(dataset["label"]) == {True, False}
    before = snapshot_params(model)
    KTOTrainer(
        model=model, args=KTOConfig(**common_args(tmp_path / "kto")), train_dataset=dataset, processing_class=tokenizer
    ).train()
    assert changed(before, model)


def test_prompt_export_feeds_grpotrainer(exported, tiny_model_dir, tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    _, model, tokenizer = policy(tiny_model_dir, tmp_path)
    dataset = load_train(exported["prompt"])
    assert dataset.column_names == ["prompt"]
    before = snapshot_params(model)
    args = GRPOConfig(**common_args(tmp_path / "grpo"), num_generations=2, max_completion_length=8)
    GRPOTrainer(
        model=model,
        reward_funcs=lambda completions, **_: [float(len(str(c))) for c in completions],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    ).train()
    assert changed(before, model)
