"""SIGKILL a round at five points (export, sft, reward, dpo, register): the store stays sound and resume finishes it.

Each kill lands at a known point: the round runs under tests/rlhf/crash_hooks.py, which pauses
there and says so in a marker file. After every kill, `rlhf.integrity.check_store` must pass
(after marking the dead round failed), and the next start is a resume of the same round; the
last resume runs to success and registers one ready version.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from crash_hooks import RUN
from sqlmodel import select

from rlhf.integrity import check_store
from rlhf.jobs import runner
from rlhf.jobs.lifecycle import version_name
from rlhf.jobs.runner import get_round, process_alive, resume_round, start_round, wait
from rlhf.training.config import load_round_config
from storage.db import session_scope
from storage.models import ModelVersion
from tests.helpers import seed_round_store

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parents[1] / "configs" / "round_dpo_tiny.yaml"
POINTS = ["export", "sft", "reward", "dpo", "register"]
pytestmark = pytest.mark.slow


def wait_for_marker(marker: Path, pid: int, timeout: float = 240) -> str:
    """Poll the file, not the store: a round paused inside a write transaction holds SQLite's write lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists():
            return marker.read_text()
        assert process_alive(pid), f"the round process ended before reaching {marker.name}"
        time.sleep(0.1)
    raise AssertionError(f"the round never reached {marker.name}")


def sigkill(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(pid)


def test_round_survives_sigkill_at_every_point(sqlite_url, tiny_model_dir, tmp_path, monkeypatch):
    seed_round_store(sqlite_url, tiny_model_dir, tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(
        runner, "launch_command", lambda config, round_id, url: [sys.executable, "-c", RUN, str(round_id), "--db", url]
    )
    round_id = None
    survived = []
    for point in POINTS:
        marker = tmp_path / f"paused-{point}"
        monkeypatch.setenv("CRASH_POINT", point)
        monkeypatch.setenv("CRASH_MARKER", str(marker))
        round_id = start_round(CONFIG, url=sqlite_url) if round_id is None else resume_round(round_id, sqlite_url)
        pid = get_round(round_id, sqlite_url).pid
        try:
            where = wait_for_marker(marker, pid)
        finally:
            sigkill(pid)
        assert where.startswith(point)

        report = check_store(sqlite_url)
        assert report.ok, (point, report.problems)
        assert [f"round {round_id}: marked failed" in line for line in report.repaired] == [True], report.repaired
        row = get_round(round_id, sqlite_url)
        assert row.status == "failed" and f"died during stage {point}" in row.error
        with session_scope(sqlite_url) as session:
            registered = session.exec(select(ModelVersion).where(ModelVersion.round_id == round_id)).all()
            policies = [v for v in registered if v.kind != "reward"]
            assert policies == [], "no policy version is recorded before register commits"
            # the reward model is registered whole, in its own transaction, just before the policy
            assert [(v.kind, v.status) for v in registered] == ([("reward", "ready")] if point == "register" else [])
        survived.append(point)

    monkeypatch.setenv("CRASH_POINT", "")
    resume_round(round_id, sqlite_url)
    row = wait(round_id, sqlite_url, timeout=300)
    assert row.status == "succeeded", row.error
    assert row.completed_stages == ["sft", "reward", "dpo"]
    assert check_store(sqlite_url, repair=False).ok
    with session_scope(sqlite_url) as session:
        version = session.get(ModelVersion, row.output_version_id)
        assert version.name == version_name(load_round_config(CONFIG), round_id)
        assert version.status == "ready" and Path(version.artifact_path).is_dir()
        kinds = session.exec(select(ModelVersion.kind).where(ModelVersion.round_id == round_id)).all()
        assert sorted(kinds) == ["dpo", "reward"]  # the resume did not register the reward model twice
    events = [json.loads(line) for line in Path(row.log_path).read_text().splitlines()]
    resumed = [e["resumed_after"] for e in events if e["event"] == "start"]
    assert resumed == [[], [], [], ["sft"], ["sft", "reward"], ["sft", "reward", "dpo"]]
    assert survived == POINTS
    print(f"crash points survived: {len(survived)}/{len(POINTS)}")
