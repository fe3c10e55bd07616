"""Evaluation pieces on known inputs: win-rate interval, length-bias alarm, gate, reward-model metrics, KL."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlhf.training import evaluation
from rlhf.training.config import EvalSpec, GateSpec
from rlhf.training.stages import PolicySource


def test_wilson_interval_is_scipys_for_whole_counts_and_does_not_collapse_at_all_wins():
    from scipy.stats import binomtest

    for wins, n in [(7, 8), (8, 8), (0, 8), (30, 64), (64, 64)]:
        outcomes = np.array([1.0] * wins + [0.0] * (n - wins))
        expected = binomtest(wins, n).proportion_ci(0.95, method="wilson")
        assert evaluation.wilson_interval(outcomes) == pytest.approx((expected.low, expected.high))
    low, high = evaluation.wilson_interval(np.ones(8))
    assert low < 0.7 and high == 1.0  # 8 of 8 wins is not certainty
    repeated = np.tile([1.0, 1.0, 0.0, 0.5], 4)  # 4 prompts, each judged 4 times
    assert evaluation.wilson_interval(repeated, n_effective=4)[0] < evaluation.wilson_interval(repeated)[0]
    assert all(np.isnan(evaluation.wilson_interval(np.array([]))))


@pytest.mark.parametrize("p_win, p_tie", [(0.5, 0.0), (0.7, 0.0), (0.9, 0.0), (0.97, 0.0), (0.6, 0.3), (0.85, 0.1)])
def test_wilson_interval_covers_the_true_win_rate_at_least_90_percent_at_n16(p_win, p_tie):
    rng = np.random.default_rng(0)
    draws = rng.random((4000, 16))
    outcomes = np.where(draws < p_win, 1.0, np.where(draws < p_win + p_tie, 0.5, 0.0))
    truth = p_win + p_tie / 2
    covered = [low <= truth <= high for low, high in map(evaluation.wilson_interval, outcomes)]
    assert np.mean(covered) >= 0.90


def test_length_bias_alarm_fires_only_when_length_explains_the_gain():
    lengths = np.array([10, 12, 14, 16, 30, 32, 34, 36], dtype=float)
    by_length = lengths * 0.1
    alarm = evaluation.length_bias(by_length, lengths, reward_gain=2.0, length_change=20.0)
    assert alarm["alarm"] and alarm["correlation"] == pytest.approx(1.0)
    assert alarm["explained_gain"] == pytest.approx(2.0)
    unrelated = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    assert not evaluation.length_bias(unrelated, lengths, reward_gain=2.0, length_change=20.0)["alarm"]
    assert not evaluation.length_bias(by_length, lengths, reward_gain=-1.0, length_change=20.0)["alarm"]


def test_gate_needs_the_win_rate_and_any_extra_conditions():
    gate = GateSpec(min_win_rate=0.55, min_reward_accuracy=0.6, block_on_length_bias=True)
    good = {"win_rate": 0.6, "reward_model": {"accuracy": 0.7}, "length_bias": {"alarm": False}}
    assert evaluation.gate_decision(good, gate) == {
        "passed": True,
        "min_win_rate": 0.55,
        "reasons": [],
        "publish": True,
    }
    assert evaluation.gate_decision(good, GateSpec(publish=False))["publish"] is False
    assert evaluation.gate_decision({**good, "win_rate": 0.5}, gate)["reasons"] == [
        "win-rate 0.500 < 0.55 (judged by the round's reward model: held-out accuracy 0.70 on ? pairs)"
    ]
    weak_judge = {"win_rate": 0.5, "reward_model": {"accuracy": 0.61, "n_pairs": 18}}
    assert evaluation.gate_decision(weak_judge, GateSpec())["reasons"] == [
        "win-rate 0.500 < 0.55 (judged by the round's reward model: held-out accuracy 0.61 on 18 pairs)"
    ]
    assert evaluation.gate_decision({"win_rate": 0.5}, GateSpec())["reasons"] == ["win-rate 0.500 < 0.55"]
    assert not evaluation.gate_decision({**good, "reward_model": {"accuracy": 0.5}}, gate)["passed"]
    assert not evaluation.gate_decision({**good, "length_bias": {"alarm": True}}, gate)["passed"]
    assert evaluation.gate_decision({}, GateSpec())["reasons"] == ["no win-rate (the round has no reward model)"]


def test_a_distill_gate_asks_for_a_floor_win_rate_and_a_speed_up_over_the_teacher():
    gate = GateSpec(min_win_rate=0.4, min_speedup=1.5)
    student = {"win_rate": 0.45, "distillation": {"speedup": 2.0}}
    assert evaluation.gate_decision(student, gate)["passed"]
    assert evaluation.gate_decision({**student, "distillation": {"speedup": 1.2}}, gate)["reasons"] == [
        "decodes 1.20x as fast as its teacher < 1.5x"
    ]
    assert evaluation.gate_decision({**student, "distillation": {"speedup": None}}, gate)["reasons"] == [
        "no decoding speed-up measured (no held-out prompts)"
    ]
    assert evaluation.gate_decision({**student, "win_rate": 0.3}, gate)["reasons"] == ["win-rate 0.300 < 0.4"]
    assert evaluation.gate_decision({"win_rate": 0.6}, GateSpec())["passed"]  # no speed-up asked, none needed


def test_reward_model_metrics_count_against_the_shuffled_order(monkeypatch):
    pairs = [
        {
            "prompt": [{"role": "user", "content": f"p{i}"}],
            "chosen": [{"role": "assistant", "content": "good"}],
            "rejected": [{"role": "assistant", "content": "bad" if i < 15 else "great"}],
        }
        for i in range(20)
    ]
    scores = {"good": 1.0, "bad": 0.0, "great": 2.0}
    monkeypatch.setattr(
        evaluation, "reward_scores", lambda model, tok, prompts, texts, *a: np.array([scores[t] for t in texts])
    )
    metrics = evaluation.reward_model_metrics(None, None, pairs, seed=3)
    assert metrics["accuracy"] == pytest.approx(15 / 20)
    a_is_chosen = np.random.default_rng(3).random(20) < 0.5
    correct = np.arange(20) < 15
    tp = np.sum(a_is_chosen & correct)
    fp = np.sum(~a_is_chosen & ~correct)
    fn = np.sum(a_is_chosen & ~correct)
    assert metrics["precision"] == pytest.approx(tp / (tp + fp))
    assert metrics["recall"] == pytest.approx(tp / (tp + fn))
    assert 0 < metrics["f1"] < 1


@pytest.mark.slow
def test_policy_compared_with_itself_has_zero_kl_and_a_real_model_does_not(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    same = PolicySource(str(tiny_model_dir))
    prompts = [[{"role": "user", "content": f"Tell me about {w}."}] for w in ("tea", "owls", "snow", "maps")]
    spec = EvalSpec(max_prompts=4, max_new_tokens=8, batch_size=2)
    metrics = evaluation.compare_policies(same, same, None, prompts, spec)
    assert metrics["kl_to_parent"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["n_prompts"] == 4 and "win_rate" not in metrics

    other = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    other.save_pretrained(tmp_path / "other")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "other")
    metrics = evaluation.compare_policies(PolicySource(str(tmp_path / "other")), same, None, prompts, spec)
    assert metrics["kl_to_parent"] > 0.01  # KL is non-negative in expectation; sampled estimate over 4 prompts


@pytest.mark.parametrize("top_p, top_k", [(1.0, 0), (0.5, 0), (1.0, 5)])
def test_sampled_kl_matches_the_exact_kl_at_the_evaluation_temperature(tiny_model_dir, top_p, top_k):
    """One-token answers, so KL(child_T ‖ parent_T) is a sum over the vocabulary. The estimate from 512 samples
    must agree with it whatever cut the compared answers were drawn with (at temperature 0.4, where scoring the
    samples at 1.0 instead is off by half)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    parent = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    child = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in child.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    prompt = [{"role": "user", "content": "Tell me about owls."}]
    spec = EvalSpec(max_prompts=512, max_new_tokens=1, temperature=0.4, top_p=top_p, top_k=top_k, batch_size=512)
    shown = evaluation.sample(child, tokenizer, [prompt] * 512, spec, seed=3)
    estimate = evaluation.kl_from_samples(child, parent, tokenizer, [prompt] * 512, spec, shown)

    ids = tokenizer.apply_chat_template([prompt], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        log_c = torch.log_softmax(child(**ids).logits[0, -1].float() / 0.4, -1)
        log_p = torch.log_softmax(parent(**ids).logits[0, -1].float() / 0.4, -1)
    exact = float((log_c.exp() * (log_c - log_p)).sum())
    standard_error = float(estimate.std()) / np.sqrt(len(estimate))
    assert exact > 0.05
    assert abs(float(estimate.mean()) - exact) < 4 * standard_error + 0.01
