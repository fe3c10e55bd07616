"""The demo's hidden-rule measurement on the answers a round's evaluation kept, without sampling again."""

import json

import pytest

from rlhf.demo.loop import DemoSettings, rule_on_round_samples


def test_rule_is_scored_on_the_rounds_evaluation_answers(tmp_path):
    path = tmp_path / "evaluation_samples.jsonl"
    rows = [  # concise: the shorter answer wins, equal lengths tie
        {"prompt": [{"role": "user", "content": "q1"}], "child": "short", "parent": "a much longer answer"},
        {"prompt": [{"role": "user", "content": "q2"}], "child": "short", "parent": "a much longer answer"},
        {"prompt": [{"role": "user", "content": "q3"}], "child": "a much longer answer", "parent": "short"},
        {"prompt": [{"role": "user", "content": "q4"}], "child": "same", "parent": "same"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    measured = rule_on_round_samples(path, DemoSettings(workdir=tmp_path, rule="concise"))

    assert measured.win_rate == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    low, high = measured.ci95
    assert 0.0 <= low <= measured.win_rate <= high <= 1.0 and low < high
    assert measured.examples[2] == ("q3", "short", "a much longer answer")  # (prompt, parent, child)
