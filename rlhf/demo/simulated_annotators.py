"""Simulated annotators: a hidden preference rule, plus the flaws real people have.

A rule scores a response; the annotator prefers the higher score, flips its
answer with probability `flip_prob`, and with probability `position_bias`
picks the left (first shown) option without reading. The demo, the efficacy
benchmark and the analytics tests use them to have something to find.
"""

from __future__ import annotations

import math
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


def concise(tolerance: float = 0.15) -> Rule:
    """Prefers the shorter response; lengths within `tolerance` of each other are a tie (people do not count
    characters), so only clearly shorter answers win."""
    step = math.log1p(tolerance)
    return lambda text: -float(math.floor(math.log1p(len(text)) / step))


NUMBERED_LINE = re.compile(r"^\s*(?:\d+[.)]|step \d+[:.])\s+\S", re.IGNORECASE | re.MULTILINE)


def numbered_steps(cap: int = 6) -> Rule:
    """Prefers answers laid out as a numbered list (more numbered lines, up to `cap`): what a reader wants
    when the prompt asks for steps. Meant for the demo's `steps` prompts."""
    return lambda text: float(min(cap, len(NUMBERED_LINE.findall(text))))


APOLOGY = re.compile(
    r"\b(?:sorry|apologi[sz]e|apologies|unfortunately|as an ai|language model|i (?:can ?not|can't|cannot|am unable|'m unable"
    r"|am not able|'m not able|don't have (?:access|the ability)|do not have (?:access|the ability)))\b",
    re.IGNORECASE,
)


def no_apology() -> Rule:
    """Prefers answers without apologies or refusals ("I'm sorry", "as an AI", "I can't"): an answer that helps
    with what it can, or says plainly what it cannot, beats one that apologises. Meant for the `cannot` prompts."""
    return lambda text: -float(len(APOLOGY.findall(text)))


FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'll|i'd|me|my|mine|myself)\b", re.IGNORECASE)


def impersonal(cap: int = 6) -> Rule:
    """Prefers answers about the request rather than about the assistant: fewer I / me / my (up to `cap`).
    Asked to do what it cannot (book a table, read a camera), SmolLM2 role-plays a person ("I'm Sarah…");
    a reader wants the facts or a plain "this needs a booking site". Meant for the `cannot` prompts."""
    return lambda text: -float(min(cap, len(FIRST_PERSON.findall(text))))


RULES: dict[str, Callable[[str], Rule]] = {
    "concise": lambda _arg: concise(),
    "impersonal": lambda _arg: impersonal(),
    "numbered_steps": lambda _arg: numbered_steps(),
    "no_apology": lambda _arg: no_apology(),
    "more_e": lambda _arg: more_of("e"),
    "more": more_of,
    "shorter": lambda _arg: shorter(),
    "mentions": mentions,
}
REAL_TEXT_RULES = {"concise": None, "numbered_steps": "steps", "impersonal": "cannot"}
"""The rules the real-model demo ships, and the tag of the bundled prompts each is judged on (None: all).
`no_apology` is kept but not shipped: SmolLM2-135M seldom apologises, so 3 of 16 sampled pairs on the
`cannot` prompts differed under it (13 of 16 under `impersonal`)."""


def rule_by_name(spec: str) -> Rule:
    """`concise`, `numbered_steps`, `impersonal`, `no_apology` (real text), `more_e`, `shorter`, `more:TOKEN` or `mentions:WORD`."""
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


def outcomes(rule: Rule, new: Sequence[str], old: Sequence[str]) -> list[float]:
    """Per pair: 1 where `new` beats `old` under `rule`, 0.5 for a tie, 0 where it loses."""
    if len(new) != len(old):
        raise ValueError("outcomes needs two equally long lists")
    scores = [(rule(a), rule(b)) for a, b in zip(new, old)]
    return [1.0 if sa > sb else 0.5 if sa == sb else 0.0 for sa, sb in scores]


def win_rate(rule: Rule, new: Sequence[str], old: Sequence[str]) -> float:
    """Share of paired responses where `new` beats `old` under `rule`; ties count half."""
    if len(new) != len(old) or not new:
        raise ValueError("win_rate needs two equally long, non-empty lists")
    return sum(outcomes(rule, new, old)) / len(new)
