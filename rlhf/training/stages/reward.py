"""A reward model trained on chosen/rejected pairs (TRL RewardTrainer).

It starts from the policy's full weights with a one-logit head; a LoRA round trains it with
LoRA and saves it merged, so later stages and evaluation load it as a plain folder.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForSequenceClassification
from trl import RewardTrainer

from rlhf.training.config import StageSpec
from rlhf.training.stages import StageContext, early_stopping, load_tokenizer_for, train_and_save


def run(spec: StageSpec, ctx: StageContext) -> Path:
    eval_dataset = ctx.eval_split(spec)
    args = spec.build_args(ctx.scratch, has_eval=eval_dataset is not None)
    tokenizer = load_tokenizer_for(ctx.policy)
    model = AutoModelForSequenceClassification.from_pretrained(ctx.policy.full_model, num_labels=1,
                                                               **(args.model_init_kwargs or {}))
    model.config.pad_token_id = tokenizer.pad_token_id
    trainer = RewardTrainer(model=model, args=args, train_dataset=ctx.data["train"], eval_dataset=eval_dataset,
                            processing_class=tokenizer, peft_config=ctx.finetune.lora_config("SEQ_CLS"),
                            callbacks=ctx.callbacks + early_stopping(spec, eval_dataset is not None))

    def save_merged(folder: str) -> None:
        model = trainer.accelerator.unwrap_model(trainer.model)
        if hasattr(model, "merge_and_unload"):
            if trainer.accelerator.is_main_process:
                model.merge_and_unload().save_pretrained(folder)
        else:
            trainer.save_model(folder)

    return train_and_save(trainer, ctx.output, save=save_merged)
