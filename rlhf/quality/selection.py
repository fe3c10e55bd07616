"""Active selection: re-score the open queue so the items worth a human's time come first.

`queue.selection` in configs/app.yaml picks the rule:
- random: no active selection; open items go back to priority 0 and are served in queue order;
- uncertainty: the closer p(a ≻ b) is to a coin flip, the earlier the pair is served;
- margin: the further p(a ≻ b) is from a coin flip, the earlier (pairs that clearly differ first);
- disagreement: items whose judgments so far disagree come first (useful with overlap > 1).
`queue.selection_scorer` says where p(a ≻ b) comes from:
- reward_model: σ(r_a − r_b) from the newest reward model in the live version's lineage (the
  reward version registered by the round that made it, or by the nearest ancestor's round);
- policy: the live policy's implicit reward against the lineage's root, the preference model
  DPO/KTO train: σ(β·[log π(a)/π_root(a) − log π(b)/π_root(b)]).
This runs off the serving path (after a queue fill, on the filler's timer, or from the
Annotators tab); serving only reads the stored priorities. bench/active_selection.py measures
which combination saves labels (bench/RESULTS.md).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from rlhf.models import registry
from rlhf.models.registry import live_version, root_version
from storage import priority
from storage.crud import StoreError
from storage.db import read_scope, session_scope
from storage.models import ModelVersion

PairScorer = Callable[[list[priority.OpenPair]], list[float]]
"""Scores a batch of pairs: p(a ≻ b) for each."""
SCORERS = ("reward_model", "policy")
IMPLICIT_BETA = 0.1
"""Only scales p: the order uncertainty and margin serve in does not depend on it."""


def reward_model_path(session: Session, version: ModelVersion | None) -> Path | None:
    """The registered reward model of the round that made `version`, else of its nearest ancestor's round."""
    reward = registry.reward_model_of(session, version)
    return Path(reward.artifact_path) if reward is not None else None


class RewardModelScorer:
    """p(a ≻ b) from a reward model folder; the model is loaded once and kept."""

    def __init__(self, path: Path, batch_size: int = 16):
        from rlhf.models.modeling import preferred_device
        from rlhf.training.evaluation import load_reward_model

        self.path = Path(path)
        self.batch_size = batch_size
        self.model, self.tokenizer = load_reward_model(self.path, preferred_device())

    def __call__(self, pairs: list[priority.OpenPair]) -> list[float]:
        from rlhf.training.evaluation import reward_scores

        prompts = [[{"role": "user", "content": pair.prompt}] for pair in pairs]
        a = reward_scores(self.model, self.tokenizer, prompts, [p.a for p in pairs], self.batch_size)
        b = reward_scores(self.model, self.tokenizer, prompts, [p.b for p in pairs], self.batch_size)
        return [1.0 / (1.0 + math.exp(-(float(x) - float(y)))) for x, y in zip(a, b)]


class ImplicitRewardScorer:
    """p(a ≻ b) from a policy and the reference it was trained away from, each loaded once and kept."""

    def __init__(
        self, policy: ModelVersion, reference: ModelVersion, beta: float = IMPLICIT_BETA, batch_size: int = 16
    ):
        from rlhf.models.artifacts import load_version
        from rlhf.models.modeling import preferred_device

        self.key = (policy.id, reference.id)
        self.beta, self.batch_size = beta, batch_size
        device = preferred_device()
        self.policy, self.tokenizer = load_version(policy, device)
        self.reference, _ = load_version(reference, device)
        self.policy.eval()
        self.reference.eval()

    def __call__(self, pairs: list[priority.OpenPair]) -> list[float]:
        prompts = [pair.prompt for pair in pairs]
        a = self._log_ratio(prompts, [pair.a for pair in pairs])
        b = self._log_ratio(prompts, [pair.b for pair in pairs])
        return [1.0 / (1.0 + math.exp(-self.beta * (x - y))) for x, y in zip(a, b)]

    def _log_ratio(self, prompts: list[str], completions: list[str]) -> list[float]:
        from rlhf.training.evaluation import completion_logprob

        out: list[float] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = self._samples(
                prompts[start : start + self.batch_size], completions[start : start + self.batch_size]
            )
            out += (completion_logprob(self.policy, batch) - completion_logprob(self.reference, batch)).tolist()
        return out

    def _samples(self, prompts: list[str], completions: list[str]):
        """Chat-templated prompts (left-padded) followed by the given completions (right-padded), as DPO scores them."""
        import torch

        from rlhf.training.evaluation import Samples

        heads, tails = [], []
        for prompt, completion in zip(prompts, completions):
            messages = [{"role": "user", "content": prompt}]
            head = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            whole = self.tokenizer.apply_chat_template(
                messages + [{"role": "assistant", "content": completion}], tokenize=False
            )
            head_ids = self.tokenizer(head, add_special_tokens=False)["input_ids"]
            heads.append(head_ids)
            tails.append(self.tokenizer(whole, add_special_tokens=False)["input_ids"][len(head_ids) :])
        pad = self.tokenizer.pad_token_id
        head_width, tail_width = max(map(len, heads)), max(map(len, tails))
        head_mask = torch.tensor([[0] * (head_width - len(ids)) + [1] * len(ids) for ids in heads])
        tail_mask = torch.tensor([[1] * len(ids) + [0] * (tail_width - len(ids)) for ids in tails])
        sequences = torch.tensor(
            [[pad] * (head_width - len(h)) + h + t + [pad] * (tail_width - len(t)) for h, t in zip(heads, tails)]
        )
        return Samples(sequences, torch.cat([head_mask, tail_mask], dim=1), tail_mask, list(completions))


@dataclass
class Prioritizer:
    """Keeps the queue's priorities current for one selection rule; scores each pair once per scoring model."""

    url: str
    selection: str = "random"
    score_with: str = "reward_model"
    scorer: PairScorer | None = None  # fixed p(a ≻ b); default: from the live version, by `score_with`
    _scored: set[int] = field(default_factory=set, init=False)
    _cached: RewardModelScorer | ImplicitRewardScorer | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self):
        if self.selection not in priority.SELECTIONS:
            raise StoreError(f"queue.selection: {self.selection!r} is not one of {', '.join(priority.SELECTIONS)}")
        if self.score_with not in SCORERS:
            raise StoreError(f"queue.selection_scorer: {self.score_with!r} is not one of {', '.join(SCORERS)}")

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
            with read_scope(self.url) as session:
                scores = priority.disagreement_priorities(session)
            with session_scope(self.url) as session:
                priority.reset_priorities(session)
                priority.set_priorities(session, scores)
            return f"disagreement: {sum(v > 0 for v in scores.values())} of {len(scores)} judged open items disagree"
        return self._refresh_scored()

    def _refresh_scored(self) -> str:
        rule = self.selection
        scorer = self.current_scorer()
        if scorer is None:
            missing = (
                "no reward model in the live version's lineage yet"
                if self.score_with == "reward_model"
                else "the live version has no parent to measure its implicit reward against"
            )
            return f"{rule}: {missing}; queue order kept"
        with read_scope(self.url) as session:
            pairs = [p for p in priority.open_pairs(session) if p.item_id not in self._scored]
        if not pairs:
            return f"{rule}: no new open pairs to score"
        values = scorer(pairs)
        to_priority = priority.uncertainty if rule == "uncertainty" else priority.margin
        with session_scope(self.url) as session:
            priority.set_priorities(session, {p.item_id: to_priority(v) for p, v in zip(pairs, values)})
        self._scored.update(p.item_id for p in pairs)
        source = "the given scorer" if self.scorer else f"the {self.score_with.replace('_', ' ')}"
        return f"{rule}: scored {len(pairs)} open pairs with {source}"

    def current_scorer(self) -> PairScorer | None:
        """What p(a ≻ b) comes from now: the given scorer, or one for the live version (None if there is none)."""
        if self.scorer is not None:
            return self.scorer
        return self._reward_model_scorer() if self.score_with == "reward_model" else self._policy_scorer()

    def _reward_model_scorer(self) -> RewardModelScorer | None:
        with read_scope(self.url) as session:
            path = reward_model_path(session, live_version(session))
        if path is None:
            return None
        if not isinstance(self._cached, RewardModelScorer) or self._cached.path != path:
            self._cached = RewardModelScorer(path)
            self._scored.clear()
        return self._cached

    def _policy_scorer(self) -> ImplicitRewardScorer | None:
        with read_scope(self.url) as session:
            live = live_version(session)
            root = root_version(session, live) if live is not None else None
        if live is None or root is None or root.id == live.id:
            return None
        if not isinstance(self._cached, ImplicitRewardScorer) or self._cached.key != (live.id, root.id):
            self._cached = ImplicitRewardScorer(live, root)
            self._scored.clear()
        return self._cached
