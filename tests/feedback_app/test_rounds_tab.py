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

from feedback_app.tabs.rounds import LogReader, log_line, loss_figure, status_text
from rlhf.jobs.runner import process_alive
from storage.db import session_scope
from storage.models import Round
from tests.helpers import PASSWORD, running_app, seed


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
    assert [axis.get_title() for axis in figure.axes] == ["loss", "reward_accuracy"]
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["sft", "dpo"]
    assert loss_figure([]) is None
    assert len(tail) == 2 and json.loads(tail[-1])["stage"] == "dpo"
    assert reader.read(str(tmp_path / "missing.jsonl"), tail=5) == ([], [])


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
        (row,) = session.exec(select(Round)).all()
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
