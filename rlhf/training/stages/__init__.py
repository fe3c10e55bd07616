"""The TRL stages as one table, and the one `run` that builds a stage's trainer from it, trains and saves.

`StageContext` says where the stage starts (a full model folder, or a LoRA adapter on a root
model) and where its output goes; `train_and_save` writes that output whole or not at all,
because the next stage (and TRL's reference model) loads from it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from datasets import DatasetDict

    from rlhf.training.config import FinetuneSpec, StageSpec


@dataclass(frozen=True)
class Stage:
    """One row of the stage table: which TRL trainer and config, which export kind it trains on, its role.

    `role` is "warmup" (SFT before the others), "reward" (trains the reward model later stages and
    the evaluation use) or "policy" (exactly one per round; its output is the round's version).
    `trains_student`: the policy stage trains a new, separate model (the stage's `student:`) from the
    round's policy as its teacher, so its version is a full model of its own, not a change to its parent.
    """

    name: str
    trainer: str
    config: str
    data_kind: str
    role: Literal["warmup", "reward", "policy"]
    takes_reward_funcs: bool = False
    trains_student: bool = False

    def trainer_class(self) -> type:
        import trl

        return getattr(trl, self.trainer)

    def config_class(self) -> type:
        import trl

        return getattr(trl, self.config)


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("sft", "SFTTrainer", "SFTConfig", "sft", "warmup"),
        Stage("reward", "RewardTrainer", "RewardConfig", "preference", "reward"),
        Stage("dpo", "DPOTrainer", "DPOConfig", "preference", "policy"),
        Stage("kto", "KTOTrainer", "KTOConfig", "unpaired", "policy"),
        Stage("grpo", "GRPOTrainer", "GRPOConfig", "prompt", "policy", takes_reward_funcs=True),
        Stage("rloo", "RLOOTrainer", "RLOOConfig", "prompt", "policy", takes_reward_funcs=True),
        Stage("distill", "DistillationTrainer", "DistillationConfig", "prompt", "policy", trains_student=True),
    )
}
"""In run order; every list of stage names (config checks, CLI choices, version kinds) derives from this."""
POLICY_STAGES = tuple(name for name, stage in STAGES.items() if stage.role == "policy")
DATA_KIND = {name: stage.data_kind for name, stage in STAGES.items()}


@dataclass
class PolicySource:
    """A policy to start from: `path` is a full model folder, or an adapter applied to `base`."""

    path: str
    is_adapter: bool = False
    base: str | None = None

    @property
    def full_model(self) -> str:
        if self.is_adapter:
            assert self.base is not None  # an adapter names its base
            return self.base
        return self.path


@dataclass
class StageContext:
    policy: PolicySource
    finetune: FinetuneSpec
    data: DatasetDict
    output: Path
    scratch: Path
    callbacks: list = field(default_factory=list)
    reward_model: Path | None = None

    def eval_split(self, spec: StageSpec):
        """The held-out split, only when the stage evaluates during training."""
        wants_eval = spec.trl_args.get("eval_strategy", "no") != "no"
        test = self.data.get("test")
        return test if wants_eval and test is not None and len(test) else None


def load_tokenizer_for(source: PolicySource):
    from rlhf.models.modeling import load_tokenizer

    folder = Path(source.path)
    return load_tokenizer(source.path if (folder / "tokenizer_config.json").is_file() else source.full_model)


def trainable_policy(source: PolicySource, finetune: FinetuneSpec, args):
    """(model, peft_config) for a TRL trainer.

    A LoRA round on an adapter parent keeps training that adapter (so the lineage shares one
    base); a LoRA round on a full model adds a fresh adapter; a full round on an adapter parent
    trains the merged weights.
    """
    if not source.is_adapter:
        return source.path, finetune.lora_config()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(source.full_model, **(args.model_init_kwargs or {}))
    model = PeftModel.from_pretrained(base, source.path, is_trainable=finetune.method == "lora")
    if finetune.method == "full":
        model = model.merge_and_unload()
    return model, None


def early_stopping(spec: StageSpec, has_eval: bool) -> list:
    if spec.early_stopping_patience is None or not has_eval:
        return []
    from transformers import EarlyStoppingCallback

    return [
        EarlyStoppingCallback(
            early_stopping_patience=spec.early_stopping_patience, early_stopping_threshold=spec.early_stopping_threshold
        )
    ]


def train_and_save(trainer, output: Path, save=None) -> Path:
    """Train, then save into a hidden folder and rename it to `output` once every process has written."""
    trainer.train()
    accelerator = trainer.accelerator
    partial = output.parent / f".{output.name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    (save or trainer.save_model)(str(partial))
    if accelerator.is_main_process and trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        # DPO/KTO/RLOO keep a frozen copy of a continued adapter as "ref"; only "default" is the policy.
        if (partial / "adapter_config.json").is_file():
            shutil.rmtree(partial / "ref", ignore_errors=True)
        os.replace(partial, output)
    accelerator.wait_for_everyone()
    return output


def run(stage: Stage, spec: StageSpec, ctx: StageContext) -> Path:
    """Build the stage's trainer from its table row, train it on the stage's data and save to `ctx.output`."""
    eval_dataset = ctx.eval_split(spec)
    args = spec.build_args(ctx.scratch, has_eval=eval_dataset is not None)
    callbacks = ctx.callbacks + early_stopping(spec, eval_dataset is not None)
    if stage.role == "reward":
        return _run_reward(stage, args, ctx, eval_dataset, callbacks)
    if stage.trains_student:
        return _run_distill(stage, spec, args, ctx, eval_dataset, callbacks)
    model, peft_config = trainable_policy(ctx.policy, ctx.finetune, args)
    extra = {"reward_funcs": str(ctx.reward_model)} if stage.takes_reward_funcs else {}
    trainer = stage.trainer_class()(
        model=model,
        args=args,
        train_dataset=ctx.data["train"],
        eval_dataset=eval_dataset,
        processing_class=load_tokenizer_for(ctx.policy),
        peft_config=peft_config,
        callbacks=callbacks,
        **extra,
    )
    return train_and_save(trainer, ctx.output)


def _run_reward(stage: Stage, args, ctx: StageContext, eval_dataset, callbacks) -> Path:
    """A one-logit head on the policy's full weights; a LoRA round saves it merged, so it loads as a plain folder."""
    from transformers import AutoModelForSequenceClassification

    tokenizer = load_tokenizer_for(ctx.policy)
    model = AutoModelForSequenceClassification.from_pretrained(
        ctx.policy.full_model, num_labels=1, **(args.model_init_kwargs or {})
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    trainer = stage.trainer_class()(
        model=model,
        args=args,
        train_dataset=ctx.data["train"],
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=ctx.finetune.lora_config("SEQ_CLS"),
        callbacks=callbacks,
    )

    def save_merged(folder: str) -> None:
        model = trainer.accelerator.unwrap_model(trainer.model)
        if hasattr(model, "merge_and_unload"):
            if trainer.accelerator.is_main_process:
                model.merge_and_unload().save_pretrained(folder)
        else:
            trainer.save_model(folder)

    return train_and_save(trainer, ctx.output, save=save_merged)


def _run_distill(stage: Stage, spec: StageSpec, args, ctx: StageContext, eval_dataset, callbacks) -> Path:
    """On-policy distillation: the student samples completions of the prompts and learns the teacher's (the
    round's policy so far) next-token distribution on them. The student is trained whole: it is a new model."""
    assert spec.student is not None  # the config check requires it
    teacher = teacher_folder(ctx.policy, ctx.scratch / "teacher")
    teacher_tokenizer = load_tokenizer_for(ctx.policy)
    student, tokenizer = student_model(spec.student, teacher, teacher_tokenizer, args.seed)
    trainer = stage.trainer_class()(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=ctx.data["train"],
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    return train_and_save(trainer, ctx.output)


def teacher_folder(source: PolicySource, scratch: Path) -> str:
    """A full model folder of the teacher: its own, or its adapter merged into `scratch` (TRL loads a teacher
    from a path with `teacher_model_init_kwargs`, and refuses those kwargs beside a loaded model)."""
    if not source.is_adapter:
        return source.path
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(source.full_model), source.path)
    merged.merge_and_unload().save_pretrained(scratch)
    return str(scratch)


def student_model(student: str, teacher: str, teacher_tokenizer, seed: int):
    """(model or path, tokenizer) for `stages.distill.student`: a built-in size is built over the teacher's
    tokenizer; a folder or hub id must have the teacher's vocabulary, token for token, since the loss compares
    the two next-token distributions entry by entry (TRL checks only that the sizes match)."""
    from transformers import AutoConfig

    from rlhf.models.modeling import SIZES, build_student, load_tokenizer

    teacher_vocab = AutoConfig.from_pretrained(teacher).get_text_config().vocab_size
    if student in SIZES:
        return build_student(student, teacher_tokenizer, teacher_vocab, seed), teacher_tokenizer
    tokenizer = load_tokenizer(student)
    if tokenizer.get_vocab() != teacher_tokenizer.get_vocab():
        raise ValueError(
            f"stages.distill.student: {student}'s tokenizer differs from the teacher's "
            f"({len(tokenizer)} vs {len(teacher_tokenizer)} tokens, or the same count mapped differently); "
            "distillation needs a shared vocabulary"
        )
    return student, tokenizer
