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


def test_a_built_in_student_is_smaller_and_shares_the_teachers_vocabulary(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from rlhf.models.modeling import load_tokenizer, parameter_count
    from rlhf.training.stages import student_model

    tokenizer = load_tokenizer(str(tiny_model_dir))
    student, student_tokenizer = student_model("tinier", str(tiny_model_dir), tokenizer, seed=0)
    teacher = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert student_tokenizer is tokenizer
    assert student.config.vocab_size == teacher.config.vocab_size
    assert student.config.eos_token_id == tokenizer.eos_token_id
    assert parameter_count(student) < parameter_count(teacher) / 2


def test_a_student_with_another_vocabulary_is_refused_naming_the_key(tiny_model_dir, tmp_path):
    from rlhf.models.modeling import init_tiny, load_tokenizer
    from rlhf.training.stages import student_model

    other = init_tiny(tmp_path / "small", size="small")  # its own tokenizer, trained to 2048 tokens
    with pytest.raises(ValueError, match=r"^stages.distill.student: .*small's tokenizer differs from the teacher's"):
        student_model(str(other), str(tiny_model_dir), load_tokenizer(str(tiny_model_dir)), seed=0)
    copy = tmp_path / "same-tokenizer"
    shutil.copytree(tiny_model_dir, copy)
    path, tokenizer = student_model(str(copy), str(tiny_model_dir), load_tokenizer(str(tiny_model_dir)), seed=0)
    assert path == str(copy) and tokenizer.get_vocab() == load_tokenizer(str(tiny_model_dir)).get_vocab()


def test_an_adapter_teacher_is_merged_into_a_folder_trl_can_load(tiny_model_dir, tiny_lora_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from rlhf.training.stages import teacher_folder

    assert teacher_folder(PolicySource(str(tiny_model_dir)), tmp_path / "unused") == str(tiny_model_dir)
    source = PolicySource(str(tiny_lora_dir), is_adapter=True, base=str(tiny_model_dir))
    merged = AutoModelForCausalLM.from_pretrained(teacher_folder(source, tmp_path / "teacher"))
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(tiny_lora_dir))
    ids = torch.arange(3, 30).unsqueeze(0)
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, reference(input_ids=ids).logits, atol=1e-4, rtol=1e-4)
