"""Active selection: re-score the open queue so the items worth a human's time come first.

`queue.selection` in configs/app.yaml picks the rule:
- random: no active selection; open items go back to priority 0 and are served in queue order;
- uncertainty: p(a ≻ b) = σ(r_a − r_b) from the newest reward model in the live version's lineage
  (the `stages/reward` folder of the round that made it, or of the nearest ancestor's round);
  the closer to a coin flip, the earlier the pair is served;
- disagreement: items whose judgments so far disagree come first (useful with overlap > 1).
This runs off the serving path (after a queue fill, on the filler's timer, or from the
Annotators tab); serving only reads the stored priorities.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from rlhf.registry import live_version
from storage import priority
from storage.crud import StoreError
from storage.db import session_scope
from storage.models import ModelVersion, Round

PairScorer = Callable[[list[priority.OpenPair]], list[float]]
"""Scores a batch of pairs: p(a ≻ b) for each."""


def reward_model_path(session: Session, version: ModelVersion | None) -> Path | None:
    """The reward model of the round that made `version`, else of its nearest ancestor's round."""
    seen = set()
    while version is not None and version.id not in seen:
        seen.add(version.id)
        if version.round_id is not None:
            row = session.get(Round, version.round_id)
            folder = Path(row.work_dir) / "stages" / "reward" if row is not None and row.work_dir else None
            if folder is not None and (folder / "config.json").is_file():
                return folder
        version = session.get(ModelVersion, version.parent_id) if version.parent_id else None
    return None


class RewardModelScorer:
    """p(a ≻ b) from a reward model folder; the model is loaded once and kept."""

    def __init__(self, path: Path, batch_size: int = 16):
        from rlhf.evaluation import load_reward_model
        from rlhf.modeling import preferred_device

        self.path = Path(path)
        self.batch_size = batch_size
        self.model, self.tokenizer = load_reward_model(self.path, preferred_device())

    def __call__(self, pairs: list[priority.OpenPair]) -> list[float]:
        from rlhf.evaluation import reward_scores

        prompts = [[{"role": "user", "content": pair.prompt}] for pair in pairs]
        a = reward_scores(self.model, self.tokenizer, prompts, [p.a for p in pairs], self.batch_size)
        b = reward_scores(self.model, self.tokenizer, prompts, [p.b for p in pairs], self.batch_size)
        return [1.0 / (1.0 + math.exp(-(float(x) - float(y)))) for x, y in zip(a, b)]


@dataclass
class Prioritizer:
    """Keeps the queue's priorities current for one selection rule; scores each pair once per reward model."""

    url: str
    selection: str = "random"
    scorer: PairScorer | None = None          # for uncertainty; default: the live lineage's reward model
    _scored: set[int] = field(default_factory=set, init=False)
    _cached: RewardModelScorer | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self):
        if self.selection not in priority.SELECTIONS:
            raise StoreError(f"queue.selection: {self.selection!r} is not one of {', '.join(priority.SELECTIONS)}")

    def refresh(self) -> str:
        """Re-score the open queue by the rule; returns a one-line summary. One refresh at a time."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> str:
        if self.selection == "random":
            with session_scope(self.url) as session:
                changed = priority.reset_priorities(session)
            return f"random: {changed} items back to queue order"
        if self.selection == "disagreement":
            with session_scope(self.url) as session:
                priority.reset_priorities(session)
                scores = priority.disagreement_priorities(session)
                priority.set_priorities(session, scores)
            return f"disagreement: {sum(v > 0 for v in scores.values())} of {len(scores)} judged open items disagree"
        return self._refresh_uncertainty()

    def _refresh_uncertainty(self) -> str:
        scorer = self.scorer or self._reward_model_scorer()
        if scorer is None:
            return "uncertainty: no reward model in the live version's lineage yet; queue order kept"
        with session_scope(self.url) as session:
            pairs = [p for p in priority.open_pairs(session) if p.item_id not in self._scored]
        if not pairs:
            return "uncertainty: no new open pairs to score"
        values = scorer(pairs)
        with session_scope(self.url) as session:
            priority.set_priorities(session, {p.item_id: priority.uncertainty(v) for p, v in zip(pairs, values)})
        self._scored.update(p.item_id for p in pairs)
        return f"uncertainty: scored {len(pairs)} open pairs"

    def _reward_model_scorer(self) -> RewardModelScorer | None:
        with session_scope(self.url) as session:
            path = reward_model_path(session, live_version(session))
        if path is None:
            return None
        if self._cached is None or self._cached.path != path:
            self._cached = RewardModelScorer(path)
            self._scored.clear()
        return self._cached
