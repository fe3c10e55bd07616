import pytest

from rlhf.demo.simulated_annotators import SimulatedAnnotator, rule_by_name, win_rate


def test_rules_by_name():
    assert rule_by_name("more_e")("eee") > rule_by_name("more_e")("e")
    assert rule_by_name("shorter")("ab") > rule_by_name("shorter")("abc")
    assert rule_by_name("mentions:tea")("I like tea") > rule_by_name("mentions:tea")("I like teapots")
    with pytest.raises(ValueError, match="rule: 'longest'"):
        rule_by_name("longest")
    with pytest.raises(ValueError, match="needs an argument"):
        rule_by_name("mentions")


def test_honest_annotator_follows_the_rule_and_noise_flips_it():
    honest = SimulatedAnnotator("h", rule_by_name("more_e"))
    assert honest.compare("eee", "e") == "left"
    assert honest.compare("e", "eee") == "right"
    assert honest.compare("ab", "cd") == "tie"
    noisy = SimulatedAnnotator("n", rule_by_name("more_e"), flip_prob=0.9, seed=1)
    wrong = sum(noisy.compare("eee", "e") == "right" for _ in range(1000))
    assert 850 < wrong < 950


def test_position_bias_picks_left_regardless():
    biased = SimulatedAnnotator("b", rule_by_name("more_e"), position_bias=1.0)
    assert {biased.compare("x", "eeee") for _ in range(50)} == {"left"}


def test_rank_and_rate():
    annotator = SimulatedAnnotator("h", rule_by_name("more_e"))
    assert annotator.rank(["e", "eee", "", "ee"]) == [1, 3, 0, 2]
    reference = ["", "e", "ee", "eee", "eeee"]
    assert [annotator.rate(r, reference) for r in reference] == [1, 2, 3, 4, 5]


def test_win_rate_counts_ties_half():
    rule = rule_by_name("more_e")
    assert win_rate(rule, ["ee", "e", "x"], ["e", "e", "e"]) == pytest.approx((1 + 0.5 + 0) / 3)
