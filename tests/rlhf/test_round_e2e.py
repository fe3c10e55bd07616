"""Each shipped tiny round config, end to end on CPU: real export, real TRL stages, evaluation, registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sqlmodel import select

from rlhf.jobs.lifecycle import create_round
from rlhf.models import registry
from rlhf.models.artifacts import load_version
from rlhf.training.config import load_round_config
from rlhf.training.evaluation import EVALUATION_SAMPLES, load_samples
from rlhf.training.recipe import run_round
from storage.db import session_scope
from storage.models import ModelVersion, Round
from tests.helpers import seed_round_store

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def weights_differ(a: ModelVersion, b: ModelVersion) -> bool:
    """Loaded the way the app loads them (adapter on its base, or the full model), do they compute different logits?"""
    ids = torch.arange(3, 40).unsqueeze(0)
    logits = []
    for version in (a, b):
        model, _ = load_version(version, device=torch.device("cpu"))
        with torch.no_grad():
            logits.append(model(input_ids=ids).logits)
    return not torch.allclose(logits[0], logits[1], atol=1e-6)


@pytest.mark.parametrize("kind", ["dpo", "kto", "rlhf", "rloo"])
def test_tiny_round_registers_a_trained_version_with_metrics(kind, sqlite_url, tiny_model_dir, tmp_path):
    seed_round_store(sqlite_url, tiny_model_dir, tmp_path)
    config = load_round_config(ROOT / "configs" / f"round_{kind}_tiny.yaml")
    with session_scope(sqlite_url) as session:
        round_id = create_round(session, config=config, url=sqlite_url).id

    run_round(round_id, sqlite_url)

    with session_scope(sqlite_url) as session:
        row = session.get(Round, round_id)
        version = session.get(ModelVersion, row.output_version_id)
        parent = registry.get_version(session, name="base")
        live = registry.live_version(session)
    assert row.status == "succeeded" and row.error is None and row.finished_at is not None
    assert row.completed_stages == list(config.stages)
    assert row.data_snapshot["max_judgment_id"] == 40 and row.data_snapshot["judgments"] == 40

    assert version.name == f"{config.name}-r{round_id}" and version.status == "ready"
    assert version.kind == config.policy_stage and version.round_id == round_id
    assert version.parent_id == parent.id and version.data_snapshot == row.data_snapshot
    assert version.is_adapter == (config.finetune.method == "lora")
    assert version.base_model == parent.artifact_path
    assert (
        Path(version.artifact_path).is_dir()
        and Path(version.artifact_path).parent == registry.artifacts_root(sqlite_url).resolve()
    )
    assert weights_differ(version, parent)

    metrics = version.metrics
    assert metrics == row.metrics
    assert set(metrics["stages"]) == set(config.stages)
    assert all(stage["steps"] > 0 for stage in metrics["stages"].values())
    for name, spec in config.stages.items():  # validation loss is tracked where the config asks for it
        assert ("eval_loss" in metrics["stages"][name]) == (spec.trl_args.get("eval_strategy", "no") != "no")
    assert 0.0 <= metrics["win_rate"] <= 1.0
    low, high = metrics["win_rate_ci95"]
    assert low <= metrics["win_rate"] <= high
    assert metrics["n_prompts"] > 0 and metrics["kl_to_parent"] == pytest.approx(metrics["kl_to_parent"])
    assert metrics["length_change"] == pytest.approx(metrics["mean_length"] - metrics["parent_mean_length"])
    assert set(metrics["reward_model"]) >= {"accuracy", "precision", "recall", "f1", "n_pairs"}
    assert metrics["reward_model"]["n_pairs"] > 0
    assert "alarm" in metrics["length_bias"]
    with session_scope(sqlite_url) as session:  # the round's judge is in the registry, found by lineage
        reward = registry.reward_model_of(session, version)
        assert reward is not None and reward.kind == "reward" and not reward.is_live
        assert reward.name == f"{version.name}-rm" and reward.round_id == round_id and reward.parent_id == parent.id
        assert reward.metrics["reward_model"] == metrics["reward_model"]
        assert (Path(reward.artifact_path) / "config.json").is_file()
    passed = metrics["gate"]["passed"]
    assert passed == (metrics["win_rate"] >= config.gate.min_win_rate)
    assert version.is_live == passed and live.name == (version.name if passed else "base")

    events = [json.loads(line) for line in Path(row.log_path).read_text().splitlines()]
    assert [e["stage"] for e in events if e["event"] == "stage_start"] == list(config.stages)
    assert any(e["event"] == "train" and e["total"] > 0 and "loss" in e for e in events)
    assert events[-1]["event"] == "done"
    assert not (Path(row.work_dir) / "scratch").exists()
    samples = load_samples(Path(row.work_dir) / EVALUATION_SAMPLES)  # both answers, readable after the round
    assert len(samples) == metrics["n_prompts"]
    assert all(s["prompt"][-1]["role"] == "user" and {"child", "parent"} <= set(s) for s in samples)


def test_lora_round_on_an_adapter_parent_keeps_the_lineage_on_one_base(sqlite_url, tiny_model_dir, tmp_path):
    seed_round_store(sqlite_url, tiny_model_dir, tmp_path)
    first = load_round_config(ROOT / "configs" / "round_rloo_tiny.yaml")
    with session_scope(sqlite_url) as session:
        first_id = create_round(session, config=first, url=sqlite_url).id
    run_round(first_id, sqlite_url)
    with session_scope(sqlite_url) as session:
        parent = session.get(ModelVersion, session.get(Round, first_id).output_version_id)
        text = first.text.replace("name: rloo-tiny", f"name: rloo-again\nparent: {parent.name}")
        from rlhf.training.config import parse_round_config

        second_id = create_round(session, config=parse_round_config(text, "second.yaml"), url=sqlite_url).id
    run_round(second_id, sqlite_url)
    with session_scope(sqlite_url) as session:
        child = session.get(ModelVersion, session.get(Round, second_id).output_version_id)
        root = registry.get_version(session, name="base")
    assert parent.is_adapter and child.is_adapter
    assert child.parent_id == parent.id
    assert child.base_model == parent.base_model == root.artifact_path
    assert weights_differ(child, parent)


def test_a_round_weights_the_adversarial_set_and_reports_it_apart(sqlite_url, tiny_model_dir, tmp_path):
    from storage.export import read_manifest
    from storage.models import AdversarialPrompt, Prompt

    seed_round_store(sqlite_url, tiny_model_dir, tmp_path, n_prompts=30)
    with session_scope(sqlite_url) as session:
        for prompt in session.exec(select(Prompt).order_by(Prompt.id)).all()[::2]:
            session.add(AdversarialPrompt(prompt_id=prompt.id, origin="written"))
    config = load_round_config(ROOT / "configs" / "round_dpo_tiny.yaml", ["data.adversarial_weight=3"])
    with session_scope(sqlite_url) as session:
        row = create_round(session, config=config, url=sqlite_url)
        round_id, work = row.id, Path(row.work_dir)

    run_round(round_id, sqlite_url)

    with session_scope(sqlite_url) as session:
        metrics = session.get_one(Round, round_id).metrics
    pairs = read_manifest(work / "data" / "preference")["adversarial"]
    assert pairs["weight"] == 3 and pairs["rows"]["train"] > 0
    prompts = read_manifest(work / "data" / "prompt")
    held_out = len(prompts["adversarial"]["test_rows"])
    assert held_out > 0
    assert metrics["adversarial"]["n_prompts"] == min(held_out, config.evaluation.max_prompts)
    assert metrics["n_prompts"] == min(prompts["counts"]["test"] - held_out, config.evaluation.max_prompts)
    low, high = metrics["adversarial"]["win_rate_ci95"]
    assert 0 <= low <= metrics["adversarial"]["win_rate"] <= high <= 1


def test_a_distill_round_registers_a_smaller_student_with_the_teacher_as_parent(sqlite_url, tiny_model_dir, tmp_path):
    from rlhf.models.modeling import parameter_count

    seed_round_store(sqlite_url, tiny_model_dir, tmp_path)
    config = load_round_config(ROOT / "configs" / "round_distill_tiny.yaml")
    with session_scope(sqlite_url) as session:
        round_id = create_round(session, config=config, url=sqlite_url).id

    run_round(round_id, sqlite_url)

    with session_scope(sqlite_url) as session:
        row = session.get(Round, round_id)
        student = session.get(ModelVersion, row.output_version_id)
        teacher = registry.get_version(session, name="base")
        lineage = registry.lineage_text(session)
    assert row.status == "succeeded" and row.completed_stages == ["reward", "distill"]
    assert student.kind == "distill" and student.parent_id == teacher.id and student.round_id == round_id
    assert not student.is_adapter and student.base_model == student.artifact_path != teacher.artifact_path
    student_model, _ = load_version(student, device=torch.device("cpu"))
    teacher_model, _ = load_version(teacher, device=torch.device("cpu"))
    assert student_model.config.num_hidden_layers < teacher_model.config.num_hidden_layers
    assert student_model.config.vocab_size == teacher_model.config.vocab_size

    figures = student.metrics["distillation"]
    assert figures["params"] == {"student": parameter_count(student_model), "teacher": parameter_count(teacher_model)}
    assert figures["params"]["student"] < figures["params"]["teacher"]
    assert figures["param_ratio"] == pytest.approx(figures["params"]["student"] / figures["params"]["teacher"])
    speed = figures["tokens_per_s"]
    assert speed["student"] > 0 and speed["teacher"] > 0
    assert figures["speedup"] == pytest.approx(speed["student"] / speed["teacher"])
    note = f"distilled from base ({figures['params']['teacher']:,} params → {figures['params']['student']:,} params)"
    assert student.config["note"] == note and note in lineage

    metrics = student.metrics
    assert metrics["stages"]["distill"]["steps"] == config.stages["distill"].trl_args["max_steps"]
    low, high = metrics["win_rate_ci95"]
    assert 0.0 <= low <= metrics["win_rate"] <= high <= 1.0
    assert metrics["kl_to_parent"] == pytest.approx(metrics["kl_to_parent"]) and metrics["n_prompts"] > 0
    gate = metrics["gate"]
    expected = metrics["win_rate"] >= config.gate.min_win_rate and figures["speedup"] >= config.gate.min_speedup
    assert gate["passed"] == (expected and not metrics["degeneration"]["alarms"])
    assert student.is_live == gate["passed"]
