"""Degeneration figures on hand-made texts, the alarms on looping vs healthy text, and the gate refusing a loop."""

from __future__ import annotations

import pytest

from rlhf.quality.degeneration import (
    DegenerationLimits,
    degeneration_alarms,
    degeneration_figures,
    distinct_n,
    repeated_ngram_share,
    truncated,
)
from rlhf.training import evaluation
from rlhf.training.config import GateSpec

HEALTHY = [
    "Tea is brewed from the leaves of Camellia sinensis and drunk hot or cold around the world.",
    "Owls hunt at night, finding prey by sound with remarkably asymmetric ears.",
    "Snow forms when water vapour freezes into ice crystals high inside a cloud.",
    "A map shrinks the land onto paper, trading some distortion for a useful overview.",
]
LOOPING = ["I'm a tree, I'm a tree, I'm a tree, I'm a tree, I'm a tree, I'm a tree,"] * 3 + HEALTHY[:1]


def test_figures_on_known_texts():
    assert repeated_ngram_share("a b c d a b c d") == pytest.approx(1 / 5)  # 5 4-grams, "a b c d" repeats once
    assert repeated_ngram_share("a b c") is None
    assert distinct_n(["a a b", "a b"], 1) == pytest.approx(2 / 5)
    assert distinct_n(["a a b", "a b"], 2) == pytest.approx(2 / 3)
    figures = degeneration_figures(["ab\ufffd", "   ", "hello world"], ended_by_eos=[True, True, False])
    assert figures["replacement_share"] == pytest.approx(1 / 3)
    assert figures["replacement_char_share"] == pytest.approx(1 / 17)
    assert figures["empty_share"] == pytest.approx(1 / 3)
    assert figures["truncated_share"] == pytest.approx(1 / 3)
    assert figures["mean_chars"] == pytest.approx(17 / 3)
    assert list(truncated([True, False, False], [12, 12, 5], 12)) == [False, True, False]
    assert list(truncated(None, [12, 5], 12)) == [True, False]


def test_alarms_fire_on_looping_text_and_not_on_healthy_text():
    limits = DegenerationLimits()
    healthy = degeneration_figures(HEALTHY)
    looping = degeneration_figures(LOOPING)
    assert degeneration_alarms(healthy, healthy, limits) == []
    alarms = degeneration_alarms(looping, healthy, limits)
    assert any(alarm.startswith("4-gram repetition") and "> 0.10 (parent 0.000)" in alarm for alarm in alarms)
    collapsed = degeneration_figures(LOOPING[:1] * 4)
    assert any(alarm.startswith("distinct-2") for alarm in degeneration_alarms(collapsed, healthy, limits))


def test_byte_soup_like_the_parent_is_not_an_alarm_but_more_of_it_is():
    soup = [f"x{i}\ufffd y\ufffd" for i in range(8)]
    assert degeneration_alarms(degeneration_figures(soup), degeneration_figures(soup), DegenerationLimits()) == []
    clean = degeneration_figures([f"x{i} y" for i in range(8)])
    assert any(
        "U+FFFD" in alarm for alarm in degeneration_alarms(degeneration_figures(soup), clean, DegenerationLimits())
    )


def test_gate_refuses_a_looping_version_and_names_why():
    healthy, looping = degeneration_figures(HEALTHY), degeneration_figures(LOOPING)
    metrics = {"win_rate": 0.9, "degeneration": {"child": looping, "parent": healthy, "alarms": []}}
    decision = evaluation.gate_decision(metrics, GateSpec())
    assert not decision["passed"]
    assert any(reason.startswith("degeneration: 4-gram repetition") for reason in decision["reasons"])
    off = GateSpec(
        degeneration=DegenerationLimits(max_repetition=None, max_repetition_increase=None, min_distinct_2=None)
    )
    assert evaluation.gate_decision(metrics, off)["passed"]
