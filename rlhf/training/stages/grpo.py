"""Online RL against the round's learned reward model (TRL GRPOTrainer, TRL 1.x's PPO-style stage)."""

from __future__ import annotations

from pathlib import Path

from trl import GRPOTrainer

from rlhf.training.config import StageSpec
from rlhf.training.stages import StageContext, early_stopping, load_tokenizer_for, train_and_save, trainable_policy


def run(spec: StageSpec, ctx: StageContext) -> Path:
    eval_dataset = ctx.eval_split(spec)
    args = spec.build_args(ctx.scratch, has_eval=eval_dataset is not None)
    model, peft_config = trainable_policy(ctx.policy, ctx.finetune, args)
    trainer = GRPOTrainer(model=model, reward_funcs=str(ctx.reward_model), args=args,
                          train_dataset=ctx.data["train"], eval_dataset=eval_dataset,
                          processing_class=load_tokenizer_for(ctx.policy), peft_config=peft_config,
                          callbacks=ctx.callbacks + early_stopping(spec, eval_dataset is not None))
    return train_and_save(trainer, ctx.output)
