"""The stage run on its own: early stopping on validation loss, and whole-or-absent outputs."""

from __future__ import annotations

import json
import shutil

import pytest
from datasets import Dataset, DatasetDict

from rlhf.training.config import FinetuneSpec, StageSpec
from rlhf.training.stages import STAGES, PolicySource, StageContext, run


def preference_data(n: int = 16) -> DatasetDict:
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Say something about {i}."}],
            "chosen": [{"role": "assistant", "content": f"{i} is fine, thank you."}],
            "rejected": [{"role": "assistant", "content": "No."}],
        }
        for i in range(n)
    ]
    return DatasetDict({"train": Dataset.from_list(rows[4:]), "test": Dataset.from_list(rows[:4])})


@pytest.mark.slow  # trains until early stopping
def test_early_stopping_ends_a_stage_whose_validation_loss_stops_improving(tiny_model_dir, tmp_path):
    spec = StageSpec(
        name="dpo",
        trl_args={
            "learning_rate": 0.0,
            "max_steps": 30,
            "per_device_train_batch_size": 2,
            "eval_strategy": "steps",
            "eval_steps": 1,
            "logging_steps": 1,
            "max_length": 64,
        },
        early_stopping_patience=2,
    )
    ctx = StageContext(
        policy=PolicySource(str(tiny_model_dir)),
        finetune=FinetuneSpec(method="lora"),
        data=preference_data(),
        output=tmp_path / "dpo",
        scratch=tmp_path / "scratch",
    )
    out = run(STAGES["dpo"], spec, ctx)
    state = json.loads(
        max(
            (tmp_path / "scratch").glob("checkpoint-*/trainer_state.json"),
            key=lambda p: int(p.parent.name.split("-")[1]),
        ).read_text()
    )
    assert state["global_step"] == 3  # first eval sets the best, two evals without improvement stop it
    assert (out / "adapter_config.json").is_file() and not (out / "ref").exists()


def test_a_stage_that_fails_leaves_no_output(tiny_model_dir, tmp_path):
    spec = StageSpec(
        name="dpo", trl_args={"learning_rate": 1e-3, "max_steps": 1, "per_device_train_batch_size": 2, "max_length": 64}
    )
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    ctx = StageContext(
        policy=PolicySource(str(broken)),
        finetune=FinetuneSpec(method="full"),
        data=preference_data(),
        output=tmp_path / "dpo",
        scratch=tmp_path / "scratch",
    )
    with pytest.raises(Exception):  # noqa: B017 (whatever safetensors raises for a damaged file)
        run(STAGES["dpo"], spec, ctx)
    assert not (tmp_path / "dpo").exists()
    assert not list(tmp_path.glob(".dpo.partial*"))
