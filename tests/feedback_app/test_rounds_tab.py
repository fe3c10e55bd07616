"""The Rounds tab: the log reader behind the live plot, and starting/cancelling a round over HTTP."""

from __future__ import annotations

import json
import os
import signal
import time
from types import SimpleNamespace

import pytest
from gradio_client import Client
from sqlmodel import select

from feedback_app.tabs.rounds import LogReader, ema, log_line, loss_figure, status_text
from rlhf.jobs.runner import process_alive
from storage.db import session_scope
from storage.models import Round
from tests.helpers import PASSWORD, REFUSED_METRICS, add_refused_round, running_app, seed


def test_log_reader_reads_only_new_complete_lines(tmp_path):
    log = tmp_path / "log.jsonl"
    lines = [
        {"event": "stage", "stage": "sft"},
        {"event": "train", "stage": "sft", "step": 1, "loss": 2.5},
        {"event": "train", "stage": "dpo", "step": 1, "loss": 0.69, "reward_accuracy": 0.5},
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines[:2]) + '{"event": "tra')
    reader = LogReader()
    points, tail = reader.read(str(log), tail=10)
    assert [(p["stage"], p["metric"], p["value"]) for p in points] == [("sft", "loss", 2.5)]
    assert len(tail) == 2  # the half-written line waits
    log.write_text(log.read_text()[: -len('{"event": "tra')] + json.dumps(lines[2]) + "\n")
    points, tail = reader.read(str(log), tail=2)
    assert [(p["stage"], p["metric"], p["value"]) for p in points] == [
        ("sft", "loss", 2.5),
        ("dpo", "loss", 0.69),
        ("dpo", "reward_accuracy", 0.5),
    ]
    figure = loss_figure(points)
    assert [axis.get_title() for axis in figure.axes] == [
        "sft: loss",
        "dpo: loss",
        "sft: reward_accuracy",
        "dpo: reward_accuracy",
    ]  # one column per stage, one row per metric
    assert {axis.get_xlabel() for axis in figure.axes} == {"training step"}
    assert figure.axes[0].get_ylabel() == "loss"
    assert not figure.axes[2].axison  # sft logged no reward accuracy
    assert loss_figure([]) is None
    assert len(tail) == 2 and json.loads(tail[-1])["stage"] == "dpo"
    assert reader.read(str(tmp_path / "missing.jsonl"), tail=5) == ([], [])


def test_loss_is_plotted_against_the_training_step_with_optional_ema(tmp_path):
    log = tmp_path / "log.jsonl"
    steps = [(5, 1.0), (10, 0.0), (15, 1.0)]
    log.write_text(
        "".join(json.dumps({"event": "train", "stage": "dpo", "step": s, "loss": v}) + "\n" for s, v in steps)
    )
    points, _ = LogReader().read(str(log), tail=10)
    (axis,) = loss_figure(points).axes
    (line,) = axis.get_lines()
    assert list(line.get_xdata()) == [5, 10, 15] and list(line.get_ydata()) == [1.0, 0.0, 1.0]
    raw, smooth = loss_figure(points, smoothing=0.5).axes[0].get_lines()
    assert list(raw.get_ydata()) == [1.0, 0.0, 1.0]
    assert list(smooth.get_ydata()) == [1.0, 0.5, 0.75] == ema([1.0, 0.0, 1.0], 0.5)
    assert smooth.get_label() == "EMA 0.5"


def test_a_round_whose_gate_refused_does_not_read_as_succeeded():
    row = SimpleNamespace(
        id=4, status="succeeded", stage=None, completed_stages=["dpo"], error=None, progress={}, metrics=REFUSED_METRICS
    )
    text = status_text(row)
    assert text.startswith("round 4: trained, not published")
    assert (
        "gate: not published: win-rate 0.531 < 0.55; degeneration: 4-gram repetition 0.148 > 0.10 (parent 0.012)"
        in text
    )
    assert "win-rate 0.531 (95% CI 0.410–0.650) (needs ≥ 0.55)" in text and "RM accuracy 0.850" in text
    passed = {**REFUSED_METRICS, "gate": {"passed": True, "min_win_rate": 0.55, "reasons": []}}
    assert status_text(SimpleNamespace(**{**vars(row), "metrics": passed})).startswith("round 4: succeeded, published")
    held = {**passed, "gate": {**passed["gate"], "publish": False}}  # a sweep's trial
    text = status_text(SimpleNamespace(**{**vars(row), "metrics": held}))
    assert text.startswith("round 4: trained, not published") and "gate: passed, not published (gate.publish" in text


def test_log_lines_are_shown_compactly():
    raw = json.dumps(
        {
            "time": "2026-11-25T02:24:20.41+00:00",
            "event": "train",
            "stage": "sft",
            "step": 1,
            "loss": 6.114423,
            "logs": {"grad_norm": 0.5},
        }
    )
    assert log_line(raw) == "02:24:20 train stage=sft step=1 loss=6.114"
    assert log_line("Traceback (most recent call last):") == "Traceback (most recent call last):"


def test_status_text_shows_stage_progress_and_error():
    row = SimpleNamespace(
        id=3,
        status="running",
        stage="dpo",
        completed_stages=["sft", "reward"],
        error=None,
        progress={"stage": "dpo", "step": 5, "total": 20, "eta_s": 12.0, "loss": 0.5},
    )
    text = status_text(row)
    assert "round 3: running" in text and "step 5/20 (25%)" in text and "loss 0.5" in text
    assert "completed: sft, reward" in text


@pytest.fixture(scope="module")
def server(module_store):
    seed(module_store, users={"eng": "engineer", "ann": "annotator"}, prompts=2)
    with running_app(module_store) as running:
        yield running


@pytest.mark.slow  # starts a round: a training subprocess
def test_engineer_starts_and_cancels_a_round(server):
    engineer = Client(server.base, auth=("eng", PASSWORD), verbose=False)
    chosen, status, *_ = engineer.predict("configs/round_dpo_tiny.yaml", api_name="/start_round")
    with session_scope(server.url) as session:
        row = session.exec(select(Round).order_by(Round.id.desc())).first()
    assert row.created_by == "eng" and row.config_path == "configs/round_dpo_tiny.yaml"
    assert f"round {row.id}:" in status
    # Hold the round's process still so it cannot finish (or fail) before the cancel arrives on a loaded machine.
    os.kill(row.pid, signal.SIGSTOP)
    try:
        status, *_ = engineer.predict(row.id, api_name="/cancel_round")
    finally:
        os.kill(row.pid, signal.SIGCONT)
    assert f"round {row.id}: cancelled" in status
    deadline = time.monotonic() + 60
    while process_alive(row.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process_alive(row.pid)
    with session_scope(server.url) as session:
        assert session.get(Round, row.id).status == "cancelled"
    with pytest.raises(Exception, match="not in the list of choices|not one of the offered configs"):
        engineer.predict("/etc/passwd", api_name="/start_round")


def test_the_rounds_tab_shows_the_gate_and_previews_a_config(server):
    round_id = add_refused_round(server.url, "v0")
    engineer = Client(server.base, auth=("eng", PASSWORD), verbose=False)
    chosen, status, *_ = engineer.predict(api_name="/rounds_show")
    assert chosen["value"] == round_id
    assert [label for label, value in chosen["choices"] if value == round_id] == [
        f"#{round_id} round_dpo_tiny.yaml by eng · not published"
    ]
    assert "trained, not published" in status and "gate: not published: win-rate 0.531 < 0.55" in status
    preview = engineer.predict("configs/round_dpo_tiny.yaml", api_name="/round_preview")
    assert preview.startswith("dpo-tiny: Tiny model on CPU")
    assert "parent: v0" in preview and "data now: " in preview and " prompts" in preview
    assert "estimated time: about 42 s (median of 1 past round of this config)" in preview


def test_a_second_round_on_a_busy_parent_is_refused_with_a_message(server):
    with session_scope(server.url) as session:
        busy = Round(config_path="configs/round_dpo_tiny.yaml", config_yaml="name: x", parent_version_id=1)
        session.add(busy)
        session.flush()
        busy_id, before = busy.id, len(session.exec(select(Round)).all())
    engineer = Client(server.base, auth=("eng", PASSWORD), verbose=False)
    try:
        *_, message = engineer.predict("configs/round_dpo_tiny.yaml", api_name="/start_round")
        assert message.startswith(f"Not started: round {busy_id} is already queued on parent 'v0'")
        preview = engineer.predict("configs/round_dpo_tiny.yaml", api_name="/round_preview")
        assert f"cannot start now: round {busy_id} is queued on parent 'v0'" in preview
        with session_scope(server.url) as session:
            assert len(session.exec(select(Round)).all()) == before
        *_, message = engineer.predict(None, api_name="/cancel_round")
        assert message == "Round: pick one first."
    finally:
        with session_scope(server.url) as session:
            session.get_one(Round, busy_id).status = "cancelled"


def test_the_rounds_tab_lists_each_sweeps_trials_with_the_best_starred(server):
    import optuna

    from rlhf.jobs import sweep

    engineer = Client(server.base, auth=("eng", PASSWORD), verbose=False)
    assert engineer.predict(api_name="/sweeps")["value"]["data"] == []
    study = optuna.create_study(study_name="tab", storage=sweep.study_storage(server.url), direction="maximize")
    study.set_user_attr(sweep.SWEEP_ATTR, {"config": "configs/round_dpo_tiny.yaml"})
    optuna.create_study(study_name="not-a-sweep", storage=sweep.study_storage(server.url))
    beta = optuna.distributions.CategoricalDistribution([0.05, 0.3])
    for value, score, alarms in ((0.05, 0.6, []), (0.3, 0.9, ["repetition 0.5 > 0.3"])):
        study.enqueue_trial({"stages.dpo.beta": value})
        trial = study.ask({"stages.dpo.beta": beta})
        trial.set_user_attr("round_id", 40 + len(alarms))
        trial.set_user_attr("degeneration_alarms", alarms)
        trial.set_constraint("degeneration", len(alarms))
        study.tell(trial, score)
    failed = study.ask({"stages.dpo.beta": beta})
    failed.set_user_attr("error", "round failed")
    study.tell(failed, state=optuna.trial.TrialState.FAIL)

    table = engineer.predict(api_name="/sweeps")["value"]
    assert table["headers"] == list(sweep.SWEEP_COLUMNS)
    rows = [row for row in table["data"] if row[0] == "tab"]
    assert [row[1] for row in rows] == [0, 1, 2] and {row[0] for row in table["data"]} == {"tab"}
    assert rows[0][2:5] == ["stages.dpo.beta=0.05", "0.600", "yes"] and rows[0][7] == "★"
    assert rows[1][3:5] == ["0.900", "no: repetition 0.5 > 0.3"] and rows[1][7] == ""  # higher, but degenerate
    assert rows[2][3] == "fail: round failed"
    shown = engineer.predict(api_name="/rounds_show")
    assert [row[0] for row in shown[-1]["value"]["data"]] == ["tab"] * 3
