"""Degeneration guard: catches a policy that wins on the reward model while its text falls apart.

Aggressive DPO collapses real models into loops (lr 5e-4 took 4-gram repetition from 0.012 to 0.148
while the win-rate looked great; 26/96 samples looped "I'm a tree, I'm a tree…"), so the publish gate
also looks at the text itself. Everything here is a pure function of the sampled completions:

* ``distinct_1`` / ``distinct_2``: unique word n-grams over all n-grams, pooled over the responses,
  so one answer repeated for every prompt counts as collapse too;
* ``repetition``: per response, the share of its word 4-grams that repeat an earlier 4-gram of the
  same response; mean over the responses long enough to have a 4-gram;
* ``replacement_share`` / ``replacement_char_share``: responses containing U+FFFD (bytes that do not
  decode: the model emits broken UTF-8), and U+FFFD characters among all characters;
* ``empty_share``: whitespace-only responses;
* ``truncated_share``: responses that hit ``max_new_tokens`` without an EOS (rambling that never ends);
* ``mean_chars``: mean length in characters.

Words are whitespace-separated, so the figures need no tokenizer and read the same for any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from storage.validation import Strict

REPLACEMENT = "\ufffd"
REPETITION_N = 4

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class DegenerationLimits(Strict):
    """Thresholds past which the gate refuses a version; ``None`` turns a check off.

    Absolute limits only where a healthy model of any size stays far from them (repetition,
    distinct-2, empty answers). Broken UTF-8 and truncation are compared with the parent instead:
    the offline tiny model is random byte soup (U+FFFD in most answers, no EOS within the cap), and
    only what a round makes worse is the round's fault.
    """

    max_repetition: Share | None = 0.10
    max_repetition_increase: Share | None = 0.05
    min_distinct_2: Share | None = 0.25
    max_replacement_share: Share | None = None
    max_replacement_increase: Share | None = 0.25
    max_empty_share: Share | None = 0.10
    max_truncated_increase: Share | None = 0.25


def words(text: str) -> list[str]:
    return text.split()


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(tokens[i:] for i in range(n))))


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Unique n-grams / all n-grams over every response together (``None`` without any n-gram)."""
    grams = [gram for text in texts for gram in ngrams(words(text), n)]
    return len(set(grams)) / len(grams) if grams else None


def repeated_ngram_share(text: str, n: int = REPETITION_N) -> float | None:
    """Share of the response's n-grams that already occurred earlier in it (``None`` if it has none)."""
    grams = ngrams(words(text), n)
    return 1.0 - len(set(grams)) / len(grams) if grams else None


def repetition(texts: Sequence[str], n: int = REPETITION_N) -> float | None:
    shares = [share for share in (repeated_ngram_share(text, n) for text in texts) if share is not None]
    return float(np.mean(shares)) if shares else None


def truncated(
    ended_by_eos: Sequence[bool] | np.ndarray | None = None,
    token_counts: Sequence[int] | np.ndarray | None = None,
    max_new_tokens: int | None = None,
) -> np.ndarray | None:
    """Which responses were cut off: no EOS (and, when the counts are known, at the cap).

    Without EOS information a response that used the whole budget counts as cut off.
    """
    at_cap = (np.asarray(token_counts) >= max_new_tokens) if token_counts is not None and max_new_tokens else None
    if ended_by_eos is not None:
        no_eos = ~np.asarray(ended_by_eos, dtype=bool)
        return no_eos & at_cap if at_cap is not None else no_eos
    return at_cap


def degeneration_figures(
    texts: Sequence[str],
    *,
    ended_by_eos: Sequence[bool] | np.ndarray | None = None,
    token_counts: Sequence[int] | np.ndarray | None = None,
    max_new_tokens: int | None = None,
) -> dict[str, Any]:
    """All the figures for one policy's samples (``None`` where a figure is undefined)."""
    if not texts:
        return {"n": 0}
    characters = sum(map(len, texts))
    cut = truncated(ended_by_eos, token_counts, max_new_tokens)
    return {
        "n": len(texts),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "repetition": repetition(texts),
        "replacement_share": float(np.mean([REPLACEMENT in text for text in texts])),
        "replacement_char_share": sum(text.count(REPLACEMENT) for text in texts) / characters if characters else 0.0,
        "empty_share": float(np.mean([not text.strip() for text in texts])),
        "truncated_share": float(cut.mean()) if cut is not None and len(cut) else None,
        "mean_chars": characters / len(texts),
    }


def degeneration_alarms(child: dict[str, Any], parent: dict[str, Any] | None, limits: DegenerationLimits) -> list[str]:
    """One readable reason per limit the child crosses, e.g. "4-gram repetition 0.148 > 0.10 (parent 0.012)"."""
    parent = parent or {}
    alarms = []

    def was(key: str) -> str:
        before = parent.get(key)
        return f" (parent {before:.3f})" if before is not None else ""

    def above(key: str, label: str, limit: float | None) -> None:
        now = child.get(key)
        if limit is not None and now is not None and now > limit:
            alarms.append(f"{label} {now:.3f} > {limit:.2f}{was(key)}")

    def rose(key: str, label: str, limit: float | None) -> None:
        now, before = child.get(key), parent.get(key)
        if limit is not None and now is not None and before is not None and now - before > limit:
            alarms.append(f"{label} rose {now - before:+.3f} > {limit:.2f} ({before:.3f} → {now:.3f})")

    repetition_label = f"{REPETITION_N}-gram repetition"
    above("repetition", repetition_label, limits.max_repetition)
    rose("repetition", repetition_label, limits.max_repetition_increase)
    distinct_2 = child.get("distinct_2")
    if limits.min_distinct_2 is not None and distinct_2 is not None and distinct_2 < limits.min_distinct_2:
        alarms.append(f"distinct-2 {distinct_2:.3f} < {limits.min_distinct_2:.2f}{was('distinct_2')}")
    above("replacement_share", "share of answers with U+FFFD", limits.max_replacement_share)
    rose("replacement_share", "share of answers with U+FFFD", limits.max_replacement_increase)
    above("empty_share", "share of empty answers", limits.max_empty_share)
    rose("truncated_share", "share of answers cut off at max_new_tokens", limits.max_truncated_increase)
    return alarms
