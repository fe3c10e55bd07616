"""A round's progress: one JSON line per event in the round's log, and the latest state on its Round row.

`TrainerProgress` is the transformers callback the stages attach; it reports step/total, loss,
reward accuracy, KL and an ETA, writing the row at most every `min_interval` seconds.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from storage.db import session_scope
from storage.models import Round


class RoundReporter:
    def __init__(self, url: str, round_id: int, log_path: Path, enabled: bool = True):
        self.url = url
        self.round_id = round_id
        self.log_path = Path(log_path)
        self.enabled = enabled

    def log(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"time": datetime.now(UTC).isoformat(), "event": event, **fields}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    def update(self, **changes: Any) -> None:
        """Set columns on the Round row (progress, stage, completed_stages, metrics...); never its status."""
        if not self.enabled:
            return
        if "status" in changes:
            raise ValueError("a round's status moves only through RoundReporter.transition")
        with session_scope(self.url) as session:
            row = session.get(Round, self.round_id)
            for key, value in changes.items():
                setattr(row, key, value)

    def transition(self, to: str, **changes: Any) -> None:
        """Move the round's status (rlhf.jobs.lifecycle.transition), setting `changes` in the same write."""
        if not self.enabled:
            return
        from rlhf.jobs.lifecycle import transition

        with session_scope(self.url) as session:
            transition(session.get_one(Round, self.round_id), to, **changes)


def _first(logs: dict[str, float], *names: str) -> float | None:
    for name in names:
        if name in logs and isinstance(logs[name], (int, float)) and math.isfinite(logs[name]):
            return float(logs[name])
    return None


class TrainerProgress(TrainerCallback):
    def __init__(self, reporter: RoundReporter, stage: str, min_interval: float = 1.0):
        self.reporter = reporter
        self.stage = stage
        self.min_interval = min_interval
        self.started = time.monotonic()
        self.last_write = 0.0
        self.latest: dict[str, Any] = {}
        self.steps = 0

    def _progress(self, state) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        total = state.max_steps or 0
        step = state.global_step
        eta = elapsed / step * (total - step) if step and total else None
        return {
            "stage": self.stage,
            "step": step,
            "total": total,
            "elapsed_s": round(elapsed, 2),
            "eta_s": round(eta, 2) if eta is not None else None,
            **self.latest,
        }

    def summary(self) -> dict[str, Any]:
        """The stage's last training/validation numbers and its step count, for the round's metrics."""
        return {**self.latest, "steps": self.steps, "seconds": round(time.monotonic() - self.started, 2)}

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        if state.is_world_process_zero:
            self.reporter.update(progress=self._progress(state))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        for key, names in {
            "loss": ("loss",),
            "eval_loss": ("eval_loss",),
            "train_loss": ("train_loss",),
            "reward_accuracy": ("rewards/accuracies", "accuracy", "eval_rewards/accuracies", "eval_accuracy"),
            "kl": ("kl", "objective/kl"),
            "reward": ("reward", "rewards/reward/mean"),
        }.items():
            value = _first(logs, *names)
            if value is not None:
                self.latest[key] = value
        self.steps = state.global_step
        progress = self._progress(state)
        self.reporter.log("train", **progress, logs=logs)
        now = time.monotonic()
        if now - self.last_write >= self.min_interval or state.global_step >= state.max_steps:
            self.last_write = now
            self.reporter.update(progress=progress)
