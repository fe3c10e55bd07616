"""Rounds as jobs: a real subprocess per round, SIGKILL and cancel mid-stage, resume, the CLI."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from sqlmodel import select

from rlhf.cli import main as cli
from rlhf.jobs.lifecycle import create_round
from rlhf.jobs.runner import cancel_round, get_round, list_rounds, process_alive, resume_round, start_round, wait
from rlhf.models import registry
from rlhf.training.config import load_round_config
from rlhf.training.recipe import main as round_main
from storage.db import session_scope
from storage.models import ModelVersion, Round
from tests.helpers import seed_round_store

ROOT = Path(__file__).resolve().parents[2]


def slow_reward_config(tmp_path: Path) -> Path:
    """The tiny DPO round with a reward stage long enough to be caught mid-way."""
    text = (ROOT / "configs" / "round_dpo_tiny.yaml").read_text()
    text = text.replace(
        "reward: {learning_rate: 1.0e-3, num_train_epochs: 2,", "reward: {learning_rate: 1.0e-3, num_train_epochs: 400,"
    )
    assert "num_train_epochs: 400" in text
    path = tmp_path / "round_slow.yaml"
    path.write_text(text)
    return path


def wait_for(predicate, url: str, round_id: int, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = get_round(round_id, url)
        if predicate(row):
            return row
        assert row.status in ("queued", "running"), f"round ended early: {row.status} {row.error}"
        time.sleep(0.1)
    raise AssertionError(f"round {round_id} never got there: {get_round(round_id, url)}")


def in_reward_stage(row: Round) -> bool:
    return row.stage == "reward" and "sft" in row.completed_stages and (row.progress or {}).get("step", 0) >= 2


def no_versions_but_base(url: str) -> bool:
    with session_scope(url) as session:
        return [v.name for _, v in registry.lineage(session)] == ["base"]


@pytest.mark.slow  # a round subprocess, killed and resumed
def test_sigkilled_round_is_marked_failed_and_resume_completes_it(sqlite_url, tiny_model_dir, tmp_path):
    seed_round_store(sqlite_url, tiny_model_dir, tmp_path)
    round_id = start_round(slow_reward_config(tmp_path), url=sqlite_url)
    pid = get_round(round_id, sqlite_url).pid
    try:
        row = wait_for(in_reward_stage, sqlite_url, round_id)
        sft_output = Path(row.work_dir) / "stages" / "sft"
        sft_written = sft_output.stat().st_mtime_ns
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if process_alive(pid):
            os.killpg(pid, signal.SIGKILL)

    listed = {r.id: r for r in list_rounds(sqlite_url)}
    assert listed[round_id].status == "failed"
    assert f"process {pid} died during stage reward" in listed[round_id].error
    assert listed[round_id].completed_stages == ["sft"]
    assert no_versions_but_base(sqlite_url)

    # Resume with the normal reward stage length: same data snapshot, sft not run again.
    with session_scope(sqlite_url) as session:
        row = session.get(Round, round_id)
        snapshot = row.data_snapshot
        row.config_yaml = (ROOT / "configs" / "round_dpo_tiny.yaml").read_text()
    resume_round(round_id, sqlite_url)
    row = wait(round_id, sqlite_url, timeout=300)
    assert row.status == "succeeded", row.error
    assert row.completed_stages == ["sft", "reward", "dpo"]
    assert row.data_snapshot == snapshot
    assert sft_output.stat().st_mtime_ns == sft_written
    starts = [json.loads(line) for line in Path(row.log_path).read_text().splitlines()]
    starts = [e for e in starts if e["event"] == "start"]
    assert [e["resumed_after"] for e in starts] == [[], ["sft"]]
    with session_scope(sqlite_url) as session:
        version = session.get(ModelVersion, row.output_version_id)
        assert version.status == "ready" and version.round_id == round_id


@pytest.mark.slow  # a round subprocess, cancelled
def test_cancel_stops_the_process_and_leaves_no_version(sqlite_url, tiny_model_dir, tmp_path):
    seed_round_store(sqlite_url, tiny_model_dir, tmp_path)
    round_id = start_round(slow_reward_config(tmp_path), url=sqlite_url)
    pid = get_round(round_id, sqlite_url).pid
    try:
        wait_for(in_reward_stage, sqlite_url, round_id)
        assert cli(["round", "cancel", str(round_id), "--db", sqlite_url]) == 0
        deadline = time.monotonic() + 30
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(pid)
    finally:
        if process_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    row = get_round(round_id, sqlite_url)
    assert row.status == "cancelled" and row.finished_at is not None
    assert no_versions_but_base(sqlite_url)
    with pytest.raises(Exception, match="not queued or running"):
        cancel_round(round_id, sqlite_url)


def test_round_that_raises_is_failed_with_the_reason(sqlite_url, tiny_model_dir, tmp_path):
    seed_round_store(sqlite_url, tiny_model_dir, tmp_path)
    text = (ROOT / "configs" / "round_dpo_tiny.yaml").read_text().replace("min_annotators: 1", "min_annotators: 3")
    config_path = tmp_path / "round_strict.yaml"
    config_path.write_text(text)
    with session_scope(sqlite_url) as session:
        round_id = create_round(session, config=load_round_config(config_path), url=sqlite_url).id
    assert round_main([str(round_id), "--db", sqlite_url]) == 1
    row = get_round(round_id, sqlite_url)
    assert row.status == "failed"
    assert "no preference training rows" in row.error and "min_annotators" in row.error
    assert no_versions_but_base(sqlite_url)
    with pytest.raises(Exception, match="no round 99"):
        resume_round(99, sqlite_url)


@pytest.mark.slow  # a whole round (reward model and KTO)
def test_cli_runs_a_round_in_the_foreground_and_lists_it(sqlite_url, tiny_model_dir, tmp_path, capsys):
    seed_round_store(sqlite_url, tiny_model_dir, tmp_path)
    command = ["round", "run", "round_kto_tiny.yaml", "stages.kto.beta=0.2", "--foreground", "--db", sqlite_url]
    assert cli(command) == 0
    assert "beta: 0.2" in get_round(1, sqlite_url).config_yaml  # the stored config is what ran
    out, err = capsys.readouterr()
    assert "succeeded" in out and "round 1 done" in err  # the tqdm bar names the stage it is in
    assert cli(["round", "list", "--db", sqlite_url]) == 0
    assert capsys.readouterr().out.startswith("1\tsucceeded")
    assert cli(["round", "show", "1", "--db", sqlite_url]) == 0
    shown = capsys.readouterr().out
    assert '"win_rate"' in shown and '"completed_stages": [\n    "reward",\n    "kto"\n  ]' in shown
    assert cli(["round", "resume", "1", "--db", sqlite_url]) == 2
    assert "round 1: is succeeded; only a failed or cancelled round can be resumed" in capsys.readouterr().err


def test_cli_rejects_a_bad_config_before_starting(sqlite_url, tmp_path, capsys):
    bad = tmp_path / "round_bad.yaml"
    bad.write_text((ROOT / "configs" / "round_dpo_tiny.yaml").read_text().replace("beta: 0.1", "betta: 0.1"))
    assert cli(["round", "run", str(bad), "--db", sqlite_url]) == 2
    assert f"{bad}: stages.dpo.betta: unknown key (did you mean beta?)" in capsys.readouterr().err
    assert list_rounds(sqlite_url) == []
    good = str(ROOT / "configs" / "round_dpo_tiny.yaml")
    assert cli(["round", "run", good, "stages.dpo.betta=0.1", "--db", sqlite_url]) == 2
    assert "stages.dpo.betta: unknown key (did you mean beta?) (set by stages.dpo.betta=0.1 on the command line)" in (
        capsys.readouterr().err
    )
    assert cli(["round", "run", str(tmp_path / "none.yaml"), "--db", sqlite_url]) == 2
    assert "none.yaml: cannot read" in capsys.readouterr().err
    assert list_rounds(sqlite_url) == []


def test_liveness_from_proc_accepts_a_process_mid_exec():
    from rlhf.jobs.runner import looks_like_a_round

    assert looks_like_a_round("S", b"/venv/bin/python -m rlhf.training.recipe 3 --db sqlite:///x.db ")
    assert looks_like_a_round("R", b"")  # exec in progress: argv not recorded yet
    assert not looks_like_a_round("S", b"/usr/bin/vim notes.txt ")  # the pid was reused
    assert not looks_like_a_round("Z", b"")
    assert not looks_like_a_round("Z", b"python -m rlhf.training.recipe 3 ")


@pytest.mark.slow  # two round processes (torchrun, gloo), killed and resumed
def test_a_round_on_two_cpu_processes_trains_on_both_registers_once_and_resumes(sqlite_url, tiny_model_dir, tmp_path):
    seed_round_store(sqlite_url, tiny_model_dir, tmp_path)
    config = slow_reward_config(tmp_path)
    config.write_text(config.read_text() + "\naccelerate: cpu_two_processes\n")
    round_id = start_round(config, url=sqlite_url)
    pid = get_round(round_id, sqlite_url).pid
    try:
        row = wait_for(in_reward_stage, sqlite_url, round_id)
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if process_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    assert get_round(round_id, sqlite_url).status == "failed"
    assert no_versions_but_base(sqlite_url)

    with session_scope(sqlite_url) as session:
        session.get_one(Round, round_id).config_yaml = (
            ROOT / "configs" / "round_dpo_tiny.yaml"
        ).read_text() + "\naccelerate: cpu_two_processes\n"
    resume_round(round_id, sqlite_url)
    row = wait(round_id, sqlite_url, timeout=300)
    assert row.status == "succeeded", row.error
    assert row.completed_stages == ["sft", "reward", "dpo"]

    events = [json.loads(line) for line in Path(row.log_path).read_text().splitlines()]
    starts = [e for e in events if e["event"] == "start"]
    # One line per launch although two processes ran each: only the main process writes.
    assert [(e["processes"], e["resumed_after"]) for e in starts] == [(2, []), (2, ["sft"])]
    assert [e["stage"] for e in events if e["event"] == "stage_done"] == ["sft", "reward", "dpo"]
    assert sum(e["event"] == "done" for e in events) == 1
    with session_scope(sqlite_url) as session:
        made = session.exec(select(ModelVersion).where(ModelVersion.round_id == round_id)).all()
        assert sorted(v.kind for v in made) == ["dpo", "reward"]
        assert all(v.status == "ready" for v in made)
