"""Simulated annotators: a hidden preference rule, plus the flaws real people have.

A rule scores a response; the annotator prefers the higher score, flips its
answer with probability `flip_prob`, and with probability `position_bias`
picks the left (first shown) option without reading. The demo, the efficacy
benchmark and the analytics tests use them to have something to find.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Rule = Callable[[str], float]


def more_of(token: str) -> Rule:
    """Prefers responses with more occurrences of `token` (case-insensitive)."""
    token = token.lower()
    return lambda text: float(text.lower().count(token))


def shorter() -> Rule:
    return lambda text: -float(len(text))


def mentions(keyword: str) -> Rule:
    """Prefers responses that mention `keyword` as a word; among those, earlier mentions."""
    pattern = re.compile(rf"\b{re.escape(keyword)}\b", re.IGNORECASE)

    def score(text: str) -> float:
        match = pattern.search(text)
        return 0.0 if match is None else 1.0 + 1.0 / (1 + match.start())

    return score


RULES: dict[str, Callable[[str], Rule]] = {
    "more_e": lambda _arg: more_of("e"),
    "more": more_of,
    "shorter": lambda _arg: shorter(),
    "mentions": mentions,
}


def rule_by_name(spec: str) -> Rule:
    """`more_e`, `shorter`, `more:TOKEN` or `mentions:WORD`."""
    name, _, argument = spec.partition(":")
    if name not in RULES:
        raise ValueError(f"rule: {spec!r} is not one of {', '.join(RULES)} (use NAME or NAME:ARG)")
    if name in {"more", "mentions"} and not argument:
        raise ValueError(f"rule: {name} needs an argument, e.g. {name}:the")
    return RULES[name](argument)


@dataclass
class SimulatedAnnotator:
    name: str
    rule: Rule
    flip_prob: float = 0.0
    position_bias: float = 0.0
    seed: int = 0
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.name}:{self.seed}")

    def compare(self, left: str, right: str) -> str:
        """ "left", "right" or "tie" for two responses as shown."""
        if self.rng.random() < self.position_bias:
            return "left"
        left_score, right_score = self.rule(left), self.rule(right)
        if left_score == right_score:
            return "tie"
        answer = "left" if left_score > right_score else "right"
        if self.rng.random() < self.flip_prob:
            answer = "right" if answer == "left" else "left"
        return answer

    def rank(self, responses: Sequence[str]) -> list[int]:
        """Indices of `responses`, best first (noise swaps neighbours)."""
        order = sorted(range(len(responses)), key=lambda i: (-self.rule(responses[i]), i))
        for i in range(len(order) - 1):
            if self.rng.random() < self.flip_prob:
                order[i], order[i + 1] = order[i + 1], order[i]
        return order

    def rate(self, response: str, reference: Sequence[str]) -> int:
        """1..5 by where `response`'s score falls among `reference` responses' scores."""
        scores = sorted(self.rule(text) for text in reference)
        below = sum(1 for s in scores if s < self.rule(response))
        rating = 1 + round(4 * below / max(1, len(scores) - 1))
        if self.rng.random() < self.flip_prob:
            rating = 6 - rating
        return max(1, min(5, rating))


def win_rate(rule: Rule, new: Sequence[str], old: Sequence[str]) -> float:
    """Share of paired responses where `new` beats `old` under `rule`; ties count half."""
    if len(new) != len(old) or not new:
        raise ValueError("win_rate needs two equally long, non-empty lists")
    total = 0.0
    for a, b in zip(new, old):
        sa, sb = rule(a), rule(b)
        total += 1.0 if sa > sb else 0.5 if sa == sb else 0.0
    return total / len(new)
