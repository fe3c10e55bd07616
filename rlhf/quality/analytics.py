"""Statistics over the store's raw judgments: agreement, Bradley–Terry strengths, annotator quality.

Everything here reads; nothing writes. The store keeps every judgment raw, so these
functions can be re-run with new thresholds on old data, and export (storage/export.py)
takes the weights and flags computed here as plain arguments.

Conventions for pairwise judgments (storage.models.Judgment):
- a *pair* is (prompt_id, lower generation id, higher generation id), whatever side was "a";
- an *outcome* is the winning generation, or "no preference" for "tie" and "both_bad";
- the *left slot* is ``shown_order[0]``; judgments without ``shown_order`` (imports) carry no
  position information and are left out of position statistics;
- gold answers live on ``AnnotationItem.gold_answer`` as ``{"choice": "a"|"b"|"tie"|"both_bad"}``
  (relative to the item's ``generation_ids`` [a, b]) or ``{"winner_generation_id": id}``
  (``None`` for a no-preference gold); a rating gold is ``{"score": n}``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from scipy import optimize, stats
from sqlmodel import Session, col, select

from storage.models import PAIR_CHOICES, AnnotationItem, Judgment, JudgmentKind, User, aware

LEVELS = ("nominal", "ordinal", "interval")

# Pairwise outcomes relative to the pair's canonical order (lower generation id first).
FIRST, SECOND, NO_PREFERENCE = 0, 1, 2

BT_PRIOR = 1e-2
"""L2 penalty on log-strengths: keeps a name that never lost finite and fixes the gauge at mean zero."""

MIN_WEIGHT = 0.05
WEIGHT_PRIOR_CHECKS = 2
"""Passed checks credited to every annotator before evidence, so a newcomer starts near full weight."""


@dataclass(frozen=True)
class QualityThresholds:
    """When an annotator is flagged; each rule needs enough evidence before it fires."""

    min_agreement: float = 0.6
    min_consensus_votes: int = 10
    min_other_annotators: int = 2
    position_bias_p: float = 0.01
    position_bias_effect: float = 0.15
    min_decisive_choices: int = 10
    min_gold_accuracy: float = 0.7
    min_gold_judgments: int = 5
    max_swap_inconsistency: float = 0.5
    min_swapped_pairs: int = 3
    rating_tolerance: float = 1.0


DEFAULT_THRESHOLDS = QualityThresholds()


@dataclass
class AnnotatorStats:
    user_id: int
    username: str
    judgments: int
    median_ms: float | None
    pairwise: int
    agreement_with_consensus: float | None
    consensus_votes: int
    rating_agreement: float | None
    rating_votes: int
    gold_accuracy: float | None
    gold_judgments: int
    position_bias_rate: float | None
    position_bias_p: float | None
    decisive_choices: int
    swap_inconsistency: float | None
    swapped_pairs: int
    weight: float
    flags: list[str] = field(default_factory=list)


# --- Krippendorff's alpha -----------------------------------------------------------


def krippendorff_alpha(reliability_data: Sequence[Sequence[Any]], level: str = "nominal") -> float:
    """Krippendorff's alpha for a coders × units table; ``None`` or NaN marks a missing value.

    Uses the coincidence-matrix formulation (Krippendorff 2011, "Computing Krippendorff's
    Alpha-Reliability"), so any number of coders and missing values are fine. Nominal values may
    be any hashable; ordinal and interval values must be numbers. Returns NaN when alpha is
    undefined: no unit has two values, or every pairable value is the same.
    """
    rows = [list(row) for row in reliability_data]
    if not rows:
        raise ValueError("reliability_data: expected at least one coder row, got none")
    width = len(rows[0])
    for index, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"reliability_data: row {index} has {len(row)} units, row 0 has {width}")
    units, values = [], []
    for row in rows:
        for unit, value in enumerate(row):
            if not _is_missing(value):
                units.append(unit)
                values.append(value)
    return alpha_from_observations(units, values, level)


def alpha_from_observations(units: Sequence[Hashable], values: Sequence[Any], level: str = "nominal") -> float:
    """Krippendorff's alpha from long-format data: one (unit, value) per coder's judgment.

    The form the store yields directly. Disagreements are the coincidence-matrix sums
    D_o = Σ o_ck δ²_ck / n and D_e = Σ n_c n_k δ²_ck / (n (n − 1)), taken in closed form from
    per-unit sums, so no values × values matrix is built: continuous interval data with 100k
    distinct values costs O(observations). Each coder must contribute at most one value per unit.
    """
    if level not in LEVELS:
        raise ValueError(f"level: {level!r} is not one of {', '.join(LEVELS)}")
    if len(units) != len(values):
        raise ValueError(f"units and values differ in length: {len(units)} vs {len(values)}")
    unit, _ = _codes(units)
    if level == "nominal":
        value, _ = _codes(values)
    else:
        numeric = _numeric(values, level)
        _, value = np.unique(numeric, return_inverse=True)
    per_unit = np.bincount(unit) if len(unit) else np.zeros(0, dtype=np.int64)
    pairable = per_unit[unit] >= 2 if len(unit) else np.zeros(0, dtype=bool)
    if not pairable.any():
        return float("nan")
    _, unit = np.unique(unit[pairable], return_inverse=True)
    value = value.ravel()[pairable]
    m = np.bincount(unit).astype(float)
    n = float(len(unit))

    if level == "nominal":
        # Only the diagonal matters: o_cc = Σ_u n_uc (n_uc − 1) / (m_u − 1), n_c = Σ_k o_ck.
        cells, n_uc = np.unique(unit * (value.max() + 1) + value, return_counts=True)
        cell_unit = cells // (value.max() + 1)
        matching = (n_uc * (n_uc - 1.0) / (m[cell_unit] - 1.0)).sum()
        n_c = np.bincount(value).astype(float)
        observed = 1.0 - matching / n
        expected = 1.0 - (n_c * (n_c - 1.0)).sum() / (n * (n - 1.0))
    else:
        if level == "interval":
            x = numeric[pairable]
        else:
            # Ordinal δ²(c, k) = (Σ_{g=c..k} n_g − (n_c + n_k)/2)² = (R_k − R_c)²
            # with R_c = Σ_{g≤c} n_g − n_c/2: interval distances between mid-ranks.
            n_c = np.bincount(value).astype(float)
            x = (np.cumsum(n_c) - n_c / 2.0)[value]
        x = x - x.mean()
        s1 = np.bincount(unit, weights=x)
        s2 = np.bincount(unit, weights=x * x)
        # Over ordered pairs i ≠ j of a set of m values: Σ (x_i − x_j)² = 2 m Σx² − 2 (Σx)².
        observed = (2.0 * (m * s2 - s1 * s1) / (m - 1.0)).sum() / n
        expected = 2.0 * (n * (x * x).sum() - x.sum() ** 2) / (n * (n - 1.0))
    if expected <= 0:
        return float("nan")
    return float(1.0 - observed / expected)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _codes(keys: Sequence[Hashable]) -> tuple[np.ndarray, list[Hashable]]:
    """Each key's index in order of first appearance, and the distinct keys in that order."""
    lookup: dict[Hashable, int] = {}
    index = np.fromiter((lookup.setdefault(key, len(lookup)) for key in keys), dtype=np.int64, count=len(keys))
    return index, list(lookup)


def _numeric(values: Sequence[Any], level: str) -> np.ndarray:
    for position, value in enumerate(values):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not np.isfinite(value)
        ):
            raise ValueError(f"{level} data must be finite numbers: value {value!r} (observation {position}) is not")
    return np.asarray(values, dtype=float)


# --- Bradley–Terry -----------------------------------------------------------------


def bradley_terry(outcomes: Sequence[tuple], n_bootstrap: int = 200, seed: int = 0) -> dict[str, dict[str, float]]:
    """Bradley–Terry log-strengths with bootstrap 95% intervals.

    ``outcomes`` are ``(winner, loser)`` or ``(a, b, score)`` with score 1 (a won), 0.5 (tie) or 0
    (b won). Strengths are maximum-likelihood log-strengths under a tiny L2 prior (so a name that
    never lost stays finite), anchored to mean zero: P(a beats b) = sigmoid(s_a − s_b).
    Intervals are percentiles over fits to outcomes resampled with replacement.
    Returns name → {"strength", "ci_low", "ci_high", "win_rate", "n"}.
    """
    if not outcomes:
        return {}
    names, first, second, scores = _parse_outcomes(outcomes)
    pairs, pair_index = np.unique(np.stack([first, second], axis=1), axis=0, return_inverse=True)
    pair_index = pair_index.ravel()
    n_names = len(names)

    def fit(weights: np.ndarray, start: np.ndarray) -> np.ndarray:
        trials = np.bincount(pair_index, weights=weights, minlength=len(pairs))
        won = np.bincount(pair_index, weights=weights * scores, minlength=len(pairs))
        return _fit_bt(pairs, trials, won, n_names, start)

    ones = np.ones(len(scores))
    strength = fit(ones, np.zeros(n_names))
    rng = np.random.default_rng(seed)
    samples = np.empty((n_bootstrap, n_names))
    for draw in range(n_bootstrap):
        resampled = np.bincount(rng.integers(0, len(scores), len(scores)), minlength=len(scores))
        samples[draw] = fit(resampled.astype(float), strength)
    if n_bootstrap:
        low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    else:
        low = high = np.full(n_names, np.nan)

    games = np.bincount(first, minlength=n_names) + np.bincount(second, minlength=n_names)
    points = np.bincount(first, weights=scores, minlength=n_names) + np.bincount(
        second, weights=1.0 - scores, minlength=n_names
    )
    return {
        name: {
            "strength": float(strength[i]),
            "ci_low": float(low[i]),
            "ci_high": float(high[i]),
            "win_rate": float(points[i] / games[i]),
            "n": int(games[i]),
        }
        for i, name in enumerate(names)
    }


def _parse_outcomes(outcomes: Sequence[tuple]) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    lookup: dict[Hashable, int] = {}
    first, second, scores = [], [], []
    for position, outcome in enumerate(outcomes):
        if len(outcome) == 2:
            a, b, score = outcome[0], outcome[1], 1.0
        elif len(outcome) == 3:
            a, b, score = outcome
        else:
            raise ValueError(f"outcomes[{position}]: expected (winner, loser) or (a, b, score), got {outcome!r}")
        if a == b:
            raise ValueError(f"outcomes[{position}]: {a!r} is compared with itself")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
            raise ValueError(f"outcomes[{position}]: score {score!r} is not a number from 0 to 1")
        first.append(lookup.setdefault(a, len(lookup)))
        second.append(lookup.setdefault(b, len(lookup)))
        scores.append(float(score))
    return list(lookup), np.array(first), np.array(second), np.array(scores)


def _fit_bt(pairs: np.ndarray, trials: np.ndarray, won: np.ndarray, n_names: int, start: np.ndarray) -> np.ndarray:
    """Maximise Σ won·log σ(d) + (trials − won)·log σ(−d) − prior/2·|s|², d = s_a − s_b, over pairs.

    Trust-region Newton with the exact Hessian (a weighted graph Laplacian plus the prior): a
    handful of steps for any number of names. (L-BFGS-B spent 15× longer in OpenBLAS threads on
    these tiny problems when the machine was busy.)
    """
    a, b = pairs[:, 0], pairs[:, 1]

    def loss(s: np.ndarray) -> tuple[float, np.ndarray]:
        d = s[a] - s[b]
        log_p = -np.logaddexp(0.0, -d)
        log_q = -np.logaddexp(0.0, d)
        value = -(won * log_p + (trials - won) * log_q).sum() + 0.5 * BT_PRIOR * (s @ s)
        residual = won - trials * np.exp(log_p)
        grad = (
            -(np.bincount(a, weights=residual, minlength=n_names) - np.bincount(b, weights=residual, minlength=n_names))
            + BT_PRIOR * s
        )
        return value, grad

    def hessian(s: np.ndarray) -> np.ndarray:
        d = s[a] - s[b]
        curvature = trials * np.exp(-np.logaddexp(0.0, -d) - np.logaddexp(0.0, d))
        h = np.diag(np.full(n_names, BT_PRIOR))
        np.add.at(h, (a, a), curvature)
        np.add.at(h, (b, b), curvature)
        np.add.at(h, (a, b), -curvature)
        np.add.at(h, (b, a), -curvature)
        return h

    result = optimize.minimize(loss, start, jac=True, hess=hessian, method="trust-exact", options={"gtol": 1e-8})
    return result.x - result.x.mean()


# --- reading the store ------------------------------------------------------------------


@dataclass
class _Pairwise:
    """Pairwise judgments as parallel arrays, one entry per judgment, ordered by judgment id."""

    user: np.ndarray
    pair: np.ndarray  # index into `pair_keys`
    outcome: np.ndarray  # FIRST, SECOND or NO_PREFERENCE
    left_is_first: np.ndarray  # bool; meaningless where `has_position` is False
    has_position: np.ndarray
    gold: np.ndarray  # outcome the gold answer expects, -1 without gold
    pair_keys: list[tuple[int, int, int]]


@dataclass
class _Ratings:
    """Each annotator's latest score per response, as parallel arrays."""

    user: np.ndarray
    generation: np.ndarray
    score: np.ndarray


@dataclass
class _RatingGold:
    """Every rating of an item with a gold score (not only the latest: each one was a check)."""

    user: np.ndarray
    score: np.ndarray
    expected: np.ndarray


@dataclass
class _Judgments:
    users: dict[int, str]
    user: np.ndarray  # every non-skip judgment
    duration: np.ndarray  # float, NaN where unknown
    pairwise: _Pairwise
    ratings: _Ratings
    rating_gold: _RatingGold


def _read_judgments(session: Session, since: datetime | None = None, max_judgment_id: int | None = None) -> _Judgments:
    """Every judgment the statistics need, in one query."""
    query = (
        select(  # type: ignore[call-overload]  # sqlmodel types select() for up to 4 columns
            Judgment.id,
            Judgment.kind,
            Judgment.user_id,
            User.username,
            Judgment.prompt_id,
            Judgment.generation_ids,
            Judgment.payload,
            Judgment.shown_order,
            Judgment.duration_ms,
            AnnotationItem.generation_ids,
            AnnotationItem.gold_answer,
        )
        .join(User, col(User.id) == Judgment.user_id)
        .outerjoin(AnnotationItem, col(AnnotationItem.id) == Judgment.item_id)
        .where(col(Judgment.kind) != JudgmentKind.skip.value)
        .order_by(col(Judgment.id))
    )
    if since is not None:
        query = query.where(col(Judgment.created_at) >= aware(since))
    if max_judgment_id is not None:
        query = query.where(col(Judgment.id) <= max_judgment_id)
    rows = session.exec(query).all()

    users: dict[int, str] = {}
    user_all, duration = [], []
    pair_lookup: dict[tuple[int, int, int], int] = {}
    p_user, p_pair, p_outcome, p_left, p_has, p_gold = [], [], [], [], [], []
    latest_rating: dict[tuple[int, int], int] = {}
    g_user, g_score, g_expected = [], [], []
    for (
        _id,
        kind,
        user_id,
        username,
        prompt_id,
        generation_ids,
        payload,
        shown_order,
        duration_ms,
        item_generation_ids,
        gold_answer,
    ) in rows:
        users[user_id] = username
        user_all.append(user_id)
        duration.append(np.nan if duration_ms is None else duration_ms)
        if kind == JudgmentKind.rating.value:
            latest_rating[(user_id, generation_ids[0])] = payload["score"]
            if isinstance(gold_answer, dict) and isinstance(gold_answer.get("score"), (int, float)):
                g_user.append(user_id)
                g_score.append(payload["score"])
                g_expected.append(gold_answer["score"])
            continue
        if kind != JudgmentKind.pairwise.value:
            continue
        low, high = sorted(generation_ids)
        key = (prompt_id, low, high)
        p_user.append(user_id)
        p_pair.append(pair_lookup.setdefault(key, len(pair_lookup)))
        p_outcome.append(_outcome(_winner(payload.get("choice"), generation_ids), low))
        p_has.append(bool(shown_order))
        p_left.append(bool(shown_order) and shown_order[0] == low)
        p_gold.append(_gold_outcome(gold_answer, item_generation_ids or generation_ids, low))

    pairwise = _Pairwise(
        user=np.array(p_user, dtype=np.int64),
        pair=np.array(p_pair, dtype=np.int64),
        outcome=np.array(p_outcome, dtype=np.int64),
        left_is_first=np.array(p_left, dtype=bool),
        has_position=np.array(p_has, dtype=bool),
        gold=np.array(p_gold, dtype=np.int64),
        pair_keys=list(pair_lookup),
    )
    ratings = _Ratings(
        user=np.array([user for user, _ in latest_rating], dtype=np.int64),
        generation=np.array([generation for _, generation in latest_rating], dtype=np.int64),
        score=np.array(list(latest_rating.values()), dtype=float),
    )
    rating_gold = _RatingGold(
        user=np.array(g_user, dtype=np.int64),
        score=np.array(g_score, dtype=float),
        expected=np.array(g_expected, dtype=float),
    )
    return _Judgments(
        users=users,
        user=np.array(user_all, dtype=np.int64),
        duration=np.array(duration, dtype=float),
        pairwise=pairwise,
        ratings=ratings,
        rating_gold=rating_gold,
    )


def _winner(choice: str | None, generation_ids: Sequence[int]) -> int | None:
    sides: dict[str | None, int] = {"a": generation_ids[0], "b": generation_ids[1]}
    return sides.get(choice)


def _outcome(winner: int | None, first_id: int) -> int:
    if winner is None:
        return NO_PREFERENCE
    return FIRST if winner == first_id else SECOND


def _gold_outcome(gold: dict[str, Any] | None, generation_ids: Sequence[int], first_id: int) -> int:
    """The outcome a gold answer expects, or -1 when the item has no usable gold answer."""
    if not gold:
        return -1
    if "winner_generation_id" in gold:
        return _outcome(gold["winner_generation_id"], first_id)
    if gold.get("choice") in PAIR_CHOICES:
        return _outcome(_winner(gold["choice"], generation_ids), first_id)
    return -1


def _latest_per_user_and_pair(pw: _Pairwise) -> np.ndarray:
    """Indices of each user's latest judgment per pair (judgments are ordered by id)."""
    keys = pw.user * (len(pw.pair_keys) + 1) + pw.pair
    _, last_from_end = np.unique(keys[::-1], return_index=True)
    return np.sort(len(keys) - 1 - last_from_end)


# --- annotator quality ---------------------------------------------------------------------


def annotator_report(
    session: Session,
    *,
    since: datetime | None = None,
    max_judgment_id: int | None = None,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
) -> list[AnnotatorStats]:
    """Per-annotator quality over judgments created at or after `since` with id up to `max_judgment_id`
    (a round's data snapshot), for every user with such judgments.

    - agreement_with_consensus: share of the annotator's votes (latest per pair) that match the
      strict plurality of the *other* annotators' votes on the same pair, over pairs that at least
      `min_other_annotators` others judged and where the others' plurality is unique;
    - rating_agreement: share of the annotator's scores (latest per response) within
      `rating_tolerance` of the mean of the other annotators' scores for that response, over
      responses at least `min_other_annotators` others rated;
    - gold_accuracy: share of judgments on items with a gold answer that match it (a rating
      matches within `rating_tolerance` of the gold score);
    - position_bias_rate: share of decisive choices (not tie / both bad) that picked the left slot,
      with a two-sided binomial test against 0.5;
    - swap_inconsistency: share of pairs the annotator judged more than once, seen from both
      sides, whose answers differ.
    """
    data = _read_judgments(session, since, max_judgment_id)
    pw = data.pairwise
    user_ids = np.array(sorted(data.users), dtype=np.int64)
    agree_hits, agree_n = _consensus_agreement(pw, user_ids, thresholds.min_other_annotators)
    rating_hits, rating_n = _rating_agreement(data.ratings, user_ids, thresholds)
    swap_bad, swap_n = _swap_inconsistency(pw, user_ids)

    def per_user(owners: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(np.searchsorted(user_ids, owners), weights=weights, minlength=len(user_ids))

    judgments = per_user(data.user)
    pairwise = per_user(pw.user)
    with_gold = pw.gold >= 0
    rg = data.rating_gold
    gold_n = per_user(pw.user[with_gold]) + per_user(rg.user)
    gold_hits = per_user(pw.user[with_gold], pw.outcome[with_gold] == pw.gold[with_gold]) + per_user(
        rg.user, np.abs(rg.score - rg.expected) <= thresholds.rating_tolerance
    )
    decisive = pw.has_position & (pw.outcome != NO_PREFERENCE)
    decisive_n = per_user(pw.user[decisive])
    picked_left = per_user(pw.user[decisive], pw.left_is_first[decisive] == (pw.outcome[decisive] == FIRST))
    timed = ~np.isnan(data.duration)
    durations = np.split(
        data.duration[timed][np.argsort(data.user[timed], kind="stable")], np.cumsum(per_user(data.user[timed]))[:-1]
    )
    passed = agree_hits + rating_hits + gold_hits
    weights = (passed + WEIGHT_PRIOR_CHECKS) / (agree_n + rating_n + gold_n + WEIGHT_PRIOR_CHECKS)

    report = []
    for i, user_id in enumerate(user_ids.tolist()):
        decisive_i, left_i = int(decisive_n[i]), int(picked_left[i])
        row = AnnotatorStats(
            user_id=user_id,
            username=data.users[user_id],
            judgments=int(judgments[i]),
            median_ms=float(np.median(durations[i])) if len(durations[i]) else None,
            pairwise=int(pairwise[i]),
            agreement_with_consensus=agree_hits[i] / agree_n[i] if agree_n[i] else None,
            consensus_votes=int(agree_n[i]),
            rating_agreement=rating_hits[i] / rating_n[i] if rating_n[i] else None,
            rating_votes=int(rating_n[i]),
            gold_accuracy=gold_hits[i] / gold_n[i] if gold_n[i] else None,
            gold_judgments=int(gold_n[i]),
            position_bias_rate=left_i / decisive_i if decisive_i else None,
            position_bias_p=float(stats.binomtest(left_i, decisive_i, 0.5).pvalue) if decisive_i else None,
            decisive_choices=decisive_i,
            swap_inconsistency=swap_bad[i] / swap_n[i] if swap_n[i] else None,
            swapped_pairs=int(swap_n[i]),
            weight=float(np.clip(weights[i], MIN_WEIGHT, 1.0)),
        )
        row.flags = _flags(row, thresholds)
        report.append(row)
    return report


def _consensus_agreement(pw: _Pairwise, user_ids: np.ndarray, min_others: int) -> tuple[np.ndarray, np.ndarray]:
    """Per user (in `user_ids` order): votes matching the others' unique plurality, and votes compared."""
    hits = np.zeros(len(user_ids), dtype=np.int64)
    compared = np.zeros(len(user_ids), dtype=np.int64)
    if not len(pw.pair):
        return hits, compared
    votes = _latest_per_user_and_pair(pw)
    pair, outcome = pw.pair[votes], pw.outcome[votes]
    tally = np.zeros((len(pw.pair_keys), 3), dtype=np.int64)
    np.add.at(tally, (pair, outcome), 1)
    others = tally[pair].copy()
    others[np.arange(len(votes)), outcome] -= 1
    ordered = np.sort(others, axis=1)
    usable = (others.sum(axis=1) >= min_others) & (ordered[:, -1] > ordered[:, -2])
    agrees = usable & (others.argmax(axis=1) == outcome)
    voter = np.searchsorted(user_ids, pw.user[votes])
    np.add.at(hits, voter, agrees)
    np.add.at(compared, voter, usable)
    return hits, compared


def _rating_agreement(ratings: _Ratings, user_ids: np.ndarray, t: QualityThresholds) -> tuple[np.ndarray, np.ndarray]:
    """Per user: scores within tolerance of the other annotators' mean for the response, and scores compared."""
    hits = np.zeros(len(user_ids), dtype=np.int64)
    compared = np.zeros(len(user_ids), dtype=np.int64)
    if not len(ratings.score):
        return hits, compared
    _, unit = np.unique(ratings.generation, return_inverse=True)
    others = np.bincount(unit)[unit] - 1
    others_sum = np.bincount(unit, weights=ratings.score)[unit] - ratings.score
    usable = others >= t.min_other_annotators
    close = np.abs(ratings.score - others_sum / np.maximum(others, 1)) <= t.rating_tolerance
    rater = np.searchsorted(user_ids, ratings.user)
    np.add.at(hits, rater, usable & close)
    np.add.at(compared, rater, usable)
    return hits, compared


def _swap_inconsistency(pw: _Pairwise, user_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per user: pairs seen from both sides with differing answers, and pairs seen from both sides."""
    bad = np.zeros(len(user_ids), dtype=np.int64)
    total = np.zeros(len(user_ids), dtype=np.int64)
    positioned = pw.has_position
    if not positioned.any():
        return bad, total
    keys = pw.user[positioned] * (len(pw.pair_keys) + 1) + pw.pair[positioned]
    groups, group = np.unique(keys, return_inverse=True)
    sides = np.zeros((len(groups), 2), dtype=np.int64)
    np.add.at(sides, (group, pw.left_is_first[positioned].astype(np.int64)), 1)
    answers = np.zeros((len(groups), 3), dtype=np.int64)
    np.add.at(answers, (group, pw.outcome[positioned]), 1)
    swapped = (sides > 0).all(axis=1)
    differs = (answers > 0).sum(axis=1) > 1
    owner = np.searchsorted(user_ids, groups // (len(pw.pair_keys) + 1))
    np.add.at(total, owner, swapped)
    np.add.at(bad, owner, swapped & differs)
    return bad, total


def _flags(row: AnnotatorStats, t: QualityThresholds) -> list[str]:
    flags = []
    # A rate is None only when its count is 0; the `is not None` tests matter for a threshold of 0.
    agreement, rating = row.agreement_with_consensus, row.rating_agreement
    if row.consensus_votes >= t.min_consensus_votes and agreement is not None and agreement < t.min_agreement:
        flags.append("low_agreement")
    if row.rating_votes >= t.min_consensus_votes and rating is not None and rating < t.min_agreement:
        flags.append("low_rating_agreement")
    if (
        row.decisive_choices >= t.min_decisive_choices
        and row.position_bias_p is not None
        and row.position_bias_rate is not None
        and row.position_bias_p < t.position_bias_p
        and abs(row.position_bias_rate - 0.5) >= t.position_bias_effect
    ):
        flags.append("position_bias")
    gold, swap = row.gold_accuracy, row.swap_inconsistency
    if row.gold_judgments >= t.min_gold_judgments and gold is not None and gold < t.min_gold_accuracy:
        flags.append("gold_failures")
    if row.swapped_pairs >= t.min_swapped_pairs and swap is not None and swap > t.max_swap_inconsistency:
        flags.append("swap_inconsistent")
    return flags


def annotator_weights(
    session: Session, *, since: datetime | None = None, max_judgment_id: int | None = None
) -> dict[int, float]:
    """user_id → weight in [0.05, 1] for weighted aggregation at export.

    The share of quality checks passed (pairwise consensus, rating consensus and gold answers),
    with `WEIGHT_PRIOR_CHECKS` passed checks credited up front, so an annotator with no checks
    yet weighs 1 and a few misses move the weight little. Users without judgments are absent.
    """
    report = annotator_report(session, since=since, max_judgment_id=max_judgment_id)
    return {row.user_id: row.weight for row in report}


def flagged_annotators(
    session: Session,
    *,
    since: datetime | None = None,
    max_judgment_id: int | None = None,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
) -> frozenset[int]:
    """user_ids with any quality flag, for `drop_flagged` export."""
    report = annotator_report(session, since=since, max_judgment_id=max_judgment_id, thresholds=thresholds)
    return frozenset(row.user_id for row in report if row.flags)


# --- dataset agreement ------------------------------------------------------------------------


def dataset_agreement(
    session: Session, *, since: datetime | None = None, max_judgment_id: int | None = None
) -> dict[str, dict[str, Any]]:
    """Krippendorff's alpha over the store: pairwise (nominal, unit = pair) and ratings (ordinal, unit = response).

    A pairwise value says which response of the pair won (the lower or the higher generation id)
    or "no preference" (tie and both bad alike). Which response counts as "lower" is arbitrary, yet
    chance agreement depends on it: if the better response always had the lower id, the skewed
    marginals would drive alpha to zero however well annotators agree. So every pair also enters
    mirrored (sides swapped): the observed disagreement is unchanged and the chance model becomes
    "pick either side alike, or neither". (Coding the winner by its own generation id would make
    every pair's values unique to it, chance agreement near zero and alpha inflated.)
    Each annotator counts once per unit, with their latest judgment. Alpha is NaN where undefined.
    """
    data = _read_judgments(session, since, max_judgment_id)
    pw = data.pairwise
    votes = _latest_per_user_and_pair(pw) if len(pw.pair) else np.array([], dtype=np.int64)
    pair, outcome = pw.pair[votes], pw.outcome[votes]
    mirrored = np.choose(outcome, [SECOND, FIRST, NO_PREFERENCE]) if len(outcome) else outcome
    pair_alpha = alpha_from_observations(
        np.concatenate([pair, pair + len(pw.pair_keys)]).tolist(),
        np.concatenate([outcome, mirrored]).tolist(),
        "nominal",
    )
    rating_alpha = alpha_from_observations(data.ratings.generation.tolist(), data.ratings.score.tolist(), "ordinal")
    return {
        "pairwise": {"alpha": pair_alpha, "level": "nominal", "units": _pairable_units(pair), "judgments": len(votes)},
        "rating": {
            "alpha": rating_alpha,
            "level": "ordinal",
            "units": _pairable_units(data.ratings.generation),
            "judgments": len(data.ratings.score),
        },
    }


def _pairable_units(units: np.ndarray) -> int:
    """Units with at least two annotators: the only ones alpha can use."""
    if not len(units):
        return 0
    _, counts = np.unique(units, return_counts=True)
    return int((counts >= 2).sum())


def export_quality(session: Session, aggregation: str, max_judgment_id: int | None) -> dict[str, Any]:
    """ExportOptions' annotator weights or exclusions, from the judgments up to `max_judgment_id` only, so a
    round's data does not depend on votes cast while it ran; computed once for all of a round's exports."""
    if aggregation == "weighted":
        return {"annotator_weights": annotator_weights(session, max_judgment_id=max_judgment_id)}
    if aggregation == "drop_flagged":
        return {"excluded_annotators": flagged_annotators(session, max_judgment_id=max_judgment_id)}
    return {}
