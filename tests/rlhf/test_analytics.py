"""Agreement, Bradley–Terry and annotator quality, on published examples and a real store (SQLite, and
PostgreSQL when RLHF_TEST_PG_URL is set)."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from rlhf.quality.analytics import (
    annotator_report,
    annotator_weights,
    bradley_terry,
    dataset_agreement,
    flagged_annotators,
    krippendorff_alpha,
)
from storage import crud
from storage.db import session_scope
from storage.models import AnnotationItem, Judgment

N = None

KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]

WIKIPEDIA_EXAMPLE = [
    [N, N, N, N, N, 3, 4, 1, 2, 1, 1, 3, 3, N, 3],
    [1, N, 2, 1, 3, 3, 4, 3, N, N, N, N, N, N, N],
    [N, N, 2, 1, 3, 4, 4, N, 2, 1, 1, 3, 3, N, 4],
]


# --- Krippendorff's alpha -----------------------------------------------------------


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_alpha_matches_krippendorff_2011_worked_example(level, published):
    """4 observers × 12 units, values 1–5, missing entries.

    Source: K. Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", Annenberg
    School for Communication (α nominal 0.743, ordinal 0.815, interval 0.849). The matrix and the
    ordinal value (0.815, citing that paper's page 8) are also in the `krippendorff` package's
    docstring and tests (github.com/pln-fing-udelar/fast-krippendorff); the same matrix is R's
    irr::kripp.alpha "C" example data.
    """
    assert round(krippendorff_alpha(KRIPPENDORFF_2011, level), 3) == published


@pytest.mark.parametrize("level, published", [("nominal", 0.691358), ("interval", 0.810845)])
def test_alpha_matches_wikipedia_computational_example(level, published):
    """3 coders × 15 units. Source: Wikipedia "Krippendorff's alpha", A computational example;
    values as asserted in the `krippendorff` package's tests (0.691358 nominal, 0.810845 interval)."""
    assert round(krippendorff_alpha(WIKIPEDIA_EXAMPLE, level), 6) == published


def test_alpha_nominal_accepts_labels_and_nan_as_missing():
    labels = [["x" if v == 1 else ("y" if v is not None else N) for v in row] for row in WIKIPEDIA_EXAMPLE]
    numbers = [[1 if v == 1 else (2 if v is not None else float("nan")) for v in row] for row in WIKIPEDIA_EXAMPLE]
    assert krippendorff_alpha(labels) == pytest.approx(krippendorff_alpha(numbers))


def test_alpha_perfect_agreement_is_one_and_undefined_is_nan():
    assert krippendorff_alpha([[1, 2, 3], [1, 2, 3]], "interval") == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha([[1, N], [N, 2]]))
    assert math.isnan(krippendorff_alpha([[4, 4], [4, 4]]))


def test_alpha_rejects_bad_input_naming_it():
    with pytest.raises(ValueError, match="level: 'ratio'"):
        krippendorff_alpha(KRIPPENDORFF_2011, "ratio")
    with pytest.raises(ValueError, match="row 1 has 2 units"):
        krippendorff_alpha([[1, 2, 3], [1, 2]])
    with pytest.raises(ValueError, match="'good'.*not"):
        krippendorff_alpha([[1, "good"], [1, 2]], "interval")


def _alpha_by_definition(data, level):
    """Krippendorff's pairwise definition, one pair of values at a time (slow, independent)."""
    units = [[row[u] for row in data if row[u] is not None] for u in range(len(data[0]))]
    units = [values for values in units if len(values) >= 2]
    pooled = [v for values in units for v in values]
    n = len(pooled)
    counts = {v: pooled.count(v) for v in set(pooled)}

    def delta(c, k):
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return float(c - k) ** 2
        low, high = min(c, k), max(c, k)
        return (sum(n_g for g, n_g in counts.items() if low <= g <= high) - (counts[c] + counts[k]) / 2) ** 2

    observed = (
        sum(delta(c, k) / (len(values) - 1) for values in units for c, k in itertools.permutations(values, 2)) / n
    )
    expected = sum(delta(c, k) for c, k in itertools.permutations(pooled, 2)) / (n * (n - 1))
    return 1 - observed / expected


@settings(max_examples=60, deadline=None)
@given(
    data=st.integers(2, 4).flatmap(
        lambda coders: st.integers(2, 8).flatmap(
            lambda units: st.lists(
                st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=units, max_size=units),
                min_size=coders,
                max_size=coders,
            )
        )
    ),
    level=st.sampled_from(["nominal", "ordinal", "interval"]),
)
def test_alpha_agrees_with_the_pairwise_definition(data, level):
    fast = krippendorff_alpha(data, level)
    units = [[row[u] for row in data if row[u] is not None] for u in range(len(data[0]))]
    pooled = {v for values in units if len(values) >= 2 for v in values}
    if len(pooled) < 2:
        assert math.isnan(fast)
    else:
        assert fast == pytest.approx(_alpha_by_definition(data, level), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    data=st.integers(2, 4).flatmap(
        lambda coders: st.integers(2, 6).flatmap(
            lambda units: st.lists(
                st.lists(
                    st.one_of(st.none(), st.integers(-400, 400).map(lambda v: v / 4)), min_size=units, max_size=units
                ),
                min_size=coders,
                max_size=coders,
            )
        )
    ),
    level=st.sampled_from(["ordinal", "interval"]),
)
def test_alpha_on_continuous_values_agrees_with_the_pairwise_definition(data, level):
    units = [[row[u] for row in data if row[u] is not None] for u in range(len(data[0]))]
    pooled = {v for values in units if len(values) >= 2 for v in values}
    if len(pooled) >= 2:
        assert krippendorff_alpha(data, level) == pytest.approx(_alpha_by_definition(data, level), abs=1e-6)


# --- Bradley–Terry -------------------------------------------------------------------------

TRUE_STRENGTH = {"v1": -1.0, "v2": 0.0, "v3": 1.0}


def _simulate_votes(n, seed):
    rng = np.random.default_rng(seed)
    names = list(TRUE_STRENGTH)
    votes = []
    for _ in range(n):
        a, b = (names[i] for i in rng.choice(len(names), 2, replace=False))
        p_a = 1 / (1 + math.exp(TRUE_STRENGTH[b] - TRUE_STRENGTH[a]))
        votes.append((a, b) if rng.random() < p_a else (b, a))
    return votes


def test_bradley_terry_ranks_versions_by_true_strength():
    result = bradley_terry(_simulate_votes(600, seed=1), n_bootstrap=100, seed=0)
    ranked = sorted(result, key=lambda name: result[name]["strength"])
    assert ranked == ["v1", "v2", "v3"]
    assert sum(row["strength"] for row in result.values()) == pytest.approx(0.0, abs=1e-6)
    for name, row in result.items():
        assert row["ci_low"] <= row["strength"] <= row["ci_high"]
        assert row["ci_low"] - 0.5 < TRUE_STRENGTH[name] < row["ci_high"] + 0.5
        assert row["n"] == sum(name in vote for vote in _simulate_votes(600, seed=1))


def test_bradley_terry_intervals_shrink_with_more_votes():
    few = bradley_terry(_simulate_votes(60, seed=2), n_bootstrap=200, seed=0)
    many = bradley_terry(_simulate_votes(2000, seed=2), n_bootstrap=200, seed=0)
    for name in TRUE_STRENGTH:
        few_width = few[name]["ci_high"] - few[name]["ci_low"]
        many_width = many[name]["ci_high"] - many[name]["ci_low"]
        assert many_width < few_width / 2


def test_bradley_terry_ties_and_unbeaten_names_stay_finite():
    result = bradley_terry([("a", "b")] * 5 + [("b", "c", 0.5)] * 4, n_bootstrap=20)
    assert all(math.isfinite(row[key]) for row in result.values() for key in ("strength", "ci_low", "ci_high"))
    assert result["a"]["win_rate"] == 1.0
    assert result["c"]["win_rate"] == 0.5
    assert result["b"]["win_rate"] == pytest.approx(2 / 9)
    assert result["a"]["strength"] > result["c"]["strength"] > result["b"]["strength"]


def test_bradley_terry_is_reproducible_for_a_seed():
    votes = _simulate_votes(100, seed=3)
    assert bradley_terry(votes, n_bootstrap=50, seed=7) == bradley_terry(votes, n_bootstrap=50, seed=7)


def test_bradley_terry_rejects_bad_outcomes_naming_the_position():
    with pytest.raises(ValueError, match=r"outcomes\[1\].*itself"):
        bradley_terry([("a", "b"), ("a", "a")])
    with pytest.raises(ValueError, match=r"outcomes\[0\]: score 2"):
        bradley_terry([("a", "b", 2)])


# --- annotator quality on a real store -------------------------------------------------------


def _store_pairs(session, n_pairs):
    """n prompts, each with a better and a worse response; returns (prompt_id, good_id, bad_id, item_id)."""
    pairs = []
    for index in range(n_pairs):
        prompt, _ = crud.add_prompt(session, text=f"prompt {index}")
        good = crud.get_or_create_generation(session, prompt_id=prompt.id, text=f"good answer {index}")
        bad = crud.get_or_create_generation(session, prompt_id=prompt.id, text=f"bad answer {index}")
        ids = [good.id, bad.id] if index % 2 else [bad.id, good.id]
        item = AnnotationItem(
            kind="pairwise",
            prompt_id=prompt.id,
            generation_ids=ids,
            overlap=8,
            gold_answer=({"winner_generation_id": good.id} if index % 3 == 0 else None),
        )
        session.add(item)
        session.flush()
        pairs.append((prompt.id, good.id, bad.id, item))
    return pairs


def _judge(session, user, pair, rng, *, style, serial):
    """One pairwise judgment by a simulated annotator; the sides shown are shuffled per judgment."""
    prompt_id, good, bad, item = pair
    shown = [good, bad] if rng.random() < 0.5 else [bad, good]
    if style == "honest":
        winner = good if rng.random() < 0.9 else bad
    elif style == "noisy":
        winner = bad if rng.random() < 0.9 else good
    else:
        winner = shown[0]
    a, b = item.generation_ids
    crud.add_judgment(
        session,
        kind="pairwise",
        user_id=user.id,
        prompt_id=prompt_id,
        generation_ids=[a, b],
        payload={"choice": "a" if winner == a else "b"},
        shown_order=shown,
        duration_ms=int(rng.integers(2000, 9000)),
        item_id=item.id,
        client_key=f"{user.username}-{serial}",
    )


STYLES = {
    "honest1": "honest",
    "honest2": "honest",
    "honest3": "honest",
    "honest4": "honest",
    "noisy": "noisy",
    "lefty": "left",
}


def _build_crowd(url, styles, *, n_pairs=60, seed=0):
    rng = np.random.default_rng(seed)
    with session_scope(url) as session:
        pairs = _store_pairs(session, n_pairs)
        users = {name: crud.create_user(session, username=name) for name in styles}
        for serial, (pair, name) in enumerate(itertools.product(pairs, styles)):
            _judge(session, users[name], pair, rng, style=styles[name], serial=serial)
    return pairs


@pytest.fixture
def crowd_url(db_url):
    """Four honest annotators (10% noise), one with 90% flip noise, one who always picks the left slot."""
    _build_crowd(db_url, STYLES)
    return db_url


def _first_judgment(session):
    judgment = session.exec(select(Judgment).order_by(Judgment.id)).first()
    return judgment.id, judgment.prompt_id, judgment.generation_ids


def _by_name(url):
    with session_scope(url) as session:
        return {row.username: row for row in annotator_report(session)}


def test_noisy_annotator_is_flagged_and_honest_ones_are_not(crowd_url):
    report = _by_name(crowd_url)
    assert {"low_agreement", "gold_failures"} <= set(report["noisy"].flags)
    assert report["noisy"].agreement_with_consensus < 0.3
    assert report["noisy"].gold_accuracy < 0.3
    for name in ("honest1", "honest2", "honest3", "honest4"):
        assert report[name].flags == [], (name, report[name])
        assert report[name].agreement_with_consensus > 0.75
        assert report[name].gold_accuracy > 0.7
        assert report[name].judgments == 60
        assert 2000 <= report[name].median_ms <= 9000


def test_left_slot_picker_is_flagged_for_position_bias_and_honest_ones_are_not(crowd_url):
    report = _by_name(crowd_url)
    lefty = report["lefty"]
    assert lefty.position_bias_rate == 1.0
    assert lefty.position_bias_p < 1e-10
    assert "position_bias" in lefty.flags
    for name in ("honest1", "honest2", "honest3", "honest4", "noisy"):
        assert "position_bias" not in report[name].flags
        assert 0.3 < report[name].position_bias_rate < 0.7


def test_weights_rank_noisy_annotator_below_honest_ones(crowd_url):
    with session_scope(crowd_url) as session:
        weights = annotator_weights(session)
        flagged = flagged_annotators(session)
        names = {user.id: user.username for user in crud.list_users(session)}
    by_name = {names[user_id]: weight for user_id, weight in weights.items()}
    assert all(0.05 <= weight <= 1.0 for weight in by_name.values())
    assert by_name["noisy"] < 0.3
    assert by_name["noisy"] < min(by_name[f"honest{i}"] for i in range(1, 5))
    assert {names[user_id] for user_id in flagged} == {"noisy", "lefty"}


def test_since_and_snapshot_bound_limit_the_report(crowd_url):
    now = datetime.now(UTC)
    with session_scope(crowd_url) as session:
        assert annotator_report(session, since=now + timedelta(days=1)) == []
        assert annotator_report(session, since=(now - timedelta(days=1)).replace(tzinfo=None))[0].judgments == 60
        first_id, _, _ = _first_judgment(session)
        (only,) = annotator_report(session, max_judgment_id=first_id)
        assert only.username == "honest1" and only.judgments == 1


def test_swap_inconsistency_counts_pairs_answered_differently_from_each_side(db_url):
    with session_scope(db_url) as session:
        pairs = _store_pairs(session, 4)
        fickle = crud.create_user(session, username="fickle")
        steady = crud.create_user(session, username="steady")
        for serial, (prompt_id, good, bad, _item) in enumerate(pairs):
            for user, second_choice in ((fickle, "b"), (steady, "a")):
                for shown, choice in (([good, bad], "a"), ([bad, good], second_choice)):
                    crud.add_judgment(
                        session,
                        kind="pairwise",
                        user_id=user.id,
                        prompt_id=prompt_id,
                        generation_ids=[good, bad],
                        payload={"choice": choice},
                        shown_order=shown,
                        client_key=f"{user.username}-{serial}-{shown[0]}",
                    )
        report = {row.username: row for row in annotator_report(session)}
    assert report["fickle"].swapped_pairs == 4
    assert report["fickle"].swap_inconsistency == 1.0
    assert "swap_inconsistent" in report["fickle"].flags
    assert report["steady"].swap_inconsistency == 0.0
    assert report["steady"].flags == []


def test_an_empty_store_has_no_report_and_undefined_agreement(db_url):
    with session_scope(db_url) as session:
        assert annotator_report(session) == []
        assert annotator_weights(session) == {}
        assert flagged_annotators(session) == frozenset()
        agreement = dataset_agreement(session)
    assert math.isnan(agreement["pairwise"]["alpha"]) and agreement["pairwise"]["units"] == 0
    assert math.isnan(agreement["rating"]["alpha"])


# --- dataset agreement ------------------------------------------------------------------------------


def test_dataset_agreement_equals_alpha_on_the_same_table(db_url):
    """The store's alphas equal krippendorff_alpha on the table they come from (pairs also mirrored)."""
    rng = np.random.default_rng(5)
    with session_scope(db_url) as session:
        pairs = _store_pairs(session, 12)
        users = [crud.create_user(session, username=f"rater{i}") for i in range(3)]
        choice_table = [[None] * len(pairs) for _ in users]
        score_table = [[None] * len(pairs) for _ in users]
        for (u, user), (p, (prompt_id, good, bad, _)) in itertools.product(enumerate(users), enumerate(pairs)):
            if rng.random() < 0.2:
                continue
            choice = str(rng.choice(["a", "a", "b", "tie", "both_bad"]))
            score = int(rng.integers(1, 6))
            crud.add_judgment(
                session,
                kind="pairwise",
                user_id=user.id,
                prompt_id=prompt_id,
                generation_ids=[good, bad],
                payload={"choice": choice},
                client_key=f"p-{u}-{p}",
            )
            crud.add_judgment(
                session,
                kind="rating",
                user_id=user.id,
                prompt_id=prompt_id,
                generation_ids=[good],
                payload={"score": score},
                client_key=f"r-{u}-{p}",
            )
            winner = {"a": good, "b": bad}.get(choice)
            choice_table[u][p] = "tie" if winner is None else ("low" if winner == min(good, bad) else "high")
            score_table[u][p] = score
        agreement = dataset_agreement(session)
    mirror = {"low": "high", "high": "low", "tie": "tie", None: None}
    both_sides = [row + [mirror[value] for value in row] for row in choice_table]
    assert agreement["pairwise"]["alpha"] == pytest.approx(krippendorff_alpha(both_sides, "nominal"))
    assert agreement["rating"]["alpha"] == pytest.approx(krippendorff_alpha(score_table, "ordinal"))
    assert agreement["pairwise"]["judgments"] == sum(v is not None for row in choice_table for v in row)


def test_dataset_agreement_is_high_for_an_honest_crowd_and_drops_with_a_noisy_annotator(db_url):
    honest = {name: style for name, style in STYLES.items() if style == "honest"}
    pairs = _build_crowd(db_url, honest, n_pairs=40)
    with session_scope(db_url) as session:
        honest_only = dataset_agreement(session)["pairwise"]
        noisy = crud.create_user(session, username="noisy")
        rng = np.random.default_rng(1)
        for serial, pair in enumerate(pairs):
            _judge(session, noisy, pair, rng, style="noisy", serial=f"n{serial}")
        with_noisy = dataset_agreement(session)["pairwise"]
    assert honest_only["units"] == 40 and honest_only["judgments"] == 160
    assert honest_only["alpha"] > 0.5
    assert with_noisy["judgments"] == 200
    assert with_noisy["alpha"] < honest_only["alpha"] - 0.2


def test_dataset_agreement_counts_each_annotator_once_per_pair_with_their_latest_answer(db_url):
    with session_scope(db_url) as session:
        ((prompt_id, good, bad, _),) = _store_pairs(session, 1)
        first, second = (crud.create_user(session, username=f"rater{i}") for i in range(2))
        for user, ids, choice, key in (
            (second, [bad, good], "b", "agrees"),
            (second, [good, bad], "b", "changed mind"),
            (first, [good, bad], "a", "first"),
        ):
            crud.add_judgment(
                session,
                kind="pairwise",
                user_id=user.id,
                prompt_id=prompt_id,
                generation_ids=ids,
                payload={"choice": choice},
                client_key=key,
            )
        result = dataset_agreement(session)["pairwise"]
    assert result["judgments"] == 2 and result["units"] == 1
    # Latest answers disagree: o(low, high) = o(high, low) = 2 over n = 4 values, so D_o = 1,
    # D_e = 2·2·2 / (4·3) = 2/3 and alpha = 1 − 3/2. The first answers would have agreed (alpha 1).
    assert result["alpha"] == pytest.approx(-0.5)


def test_consensus_leaves_the_annotator_out(db_url):
    """Two annotators always pick the first response, one the second: each one's *others* are
    split 1–1 for the first two (no consensus), and unanimous against the third."""
    with session_scope(db_url) as session:
        pairs = _store_pairs(session, 12)
        users = [crud.create_user(session, username=name) for name in ("x", "y", "contrarian")]
        for serial, (prompt_id, good, bad, _) in enumerate(pairs):
            for user in users:
                crud.add_judgment(
                    session,
                    kind="pairwise",
                    user_id=user.id,
                    prompt_id=prompt_id,
                    generation_ids=[good, bad],
                    payload={"choice": "b" if user.username == "contrarian" else "a"},
                    client_key=f"{user.username}-{serial}",
                )
        report = {row.username: row for row in annotator_report(session)}
    assert report["x"].consensus_votes == 0 and report["x"].agreement_with_consensus is None
    assert report["contrarian"].consensus_votes == 12
    assert report["contrarian"].agreement_with_consensus == 0.0
    assert report["contrarian"].flags == ["low_agreement"]


def test_rating_against_the_others_flags_a_reversed_scale(db_url):
    """Four annotators score responses by their true quality; one scores 6 − quality."""
    qualities = [1, 2, 4, 5] * 3
    with session_scope(db_url) as session:
        pairs = _store_pairs(session, len(qualities))
        users = [crud.create_user(session, username=name) for name in ("r1", "r2", "r3", "r4", "reversed")]
        for serial, ((prompt_id, good, _, _), quality) in enumerate(zip(pairs, qualities)):
            for user in users:
                score = 6 - quality if user.username == "reversed" else quality
                crud.add_judgment(
                    session,
                    kind="rating",
                    user_id=user.id,
                    prompt_id=prompt_id,
                    generation_ids=[good],
                    payload={"score": score},
                    client_key=f"{user.username}-{serial}",
                )
        report = {row.username: row for row in annotator_report(session)}
        weights = annotator_weights(session)
    assert report["reversed"].rating_votes == 12
    assert report["reversed"].rating_agreement == 0.0
    assert report["reversed"].flags == ["low_rating_agreement"]
    for name in ("r1", "r2", "r3", "r4"):
        assert report[name].rating_agreement == 1.0 and report[name].flags == []
        assert weights[report[name].user_id] > 0.9
    assert weights[report["reversed"].user_id] < 0.2
