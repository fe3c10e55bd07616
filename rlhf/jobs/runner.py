"""Rounds as jobs: launch in their own process, follow, cancel, resume, and notice when one has died.

A round's process records nothing about its own death when it is SIGKILLed or OOM-killed, so
every listing (`list_rounds`, the app) first checks the recorded pid of each "running" round
and marks it failed if that process is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import Session, col, select

from rlhf.jobs.lifecycle import ACTIVE, create_round, refuse_if_parent_busy, round_dir, transition
from rlhf.training.config import ACCELERATE_CONFIGS, RoundConfig, load_round_config
from storage.crud import StoreError
from storage.db import database_url, session_scope
from storage.models import ModelVersion, Round, RoundStatus, utcnow


def launch_command(config: RoundConfig, round_id: int, url: str) -> list[str]:
    """`python -m rlhf.training.recipe ...`, or the same under `accelerate launch` when the config names a setup.

    A CPU setup with several processes goes through torchrun instead: `accelerate launch` starts
    several CPU processes only through mpirun, and accelerate's state takes gloo from torchrun's
    environment just the same (with `ACCELERATE_USE_CPU`, see `launch_environment`).
    """
    module_args = ["-m", "rlhf.training.recipe", str(round_id), "--db", url]
    if config.accelerate is None:
        return [sys.executable, *module_args]
    setup = ACCELERATE_CONFIGS / f"{config.accelerate}.yaml"
    processes = cpu_processes(setup)
    if processes > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            *module_args,
        ]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(setup), *module_args]


def cpu_processes(setup: Path) -> int:
    """How many CPU processes an accelerate config asks for; 0 for a GPU setup."""
    import yaml

    values = yaml.safe_load(setup.read_text()) or {}
    return int(values.get("num_processes", 1)) if values.get("use_cpu") else 0


def launch_environment(config: RoundConfig) -> dict[str, str]:
    env = dict(os.environ)
    if config.accelerate is not None and cpu_processes(ACCELERATE_CONFIGS / f"{config.accelerate}.yaml") > 1:
        env["ACCELERATE_USE_CPU"] = "true"
    return env


def _spawn(config: RoundConfig, round_id: int, url: str) -> int:
    work = round_dir(url, round_id)
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "process.log", "ab") as output:
        process = subprocess.Popen(
            launch_command(config, round_id, url),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=Path.cwd(),
            env=launch_environment(config),
        )
    with session_scope(url) as session:
        row = session.get_one(Round, round_id)
        row.pid = process.pid
        if row.status == RoundStatus.queued.value:
            transition(row, RoundStatus.running.value)
    return process.pid


def start_round(
    config_path: str | Path,
    url: str | None = None,
    created_by: str | None = None,
    overrides: tuple[str, ...] = (),
    data_snapshot: dict | None = None,
) -> int:
    """Validate the config (with `key=value` overrides), record a queued round, start its process; returns its id."""
    url = database_url(url)
    config = load_round_config(config_path, overrides)
    with session_scope(url) as session:
        row = create_round(session, config=config, url=url, created_by=created_by, data_snapshot=data_snapshot)
        round_id = row.id
    assert round_id is not None  # create_round flushes it
    _spawn(config, round_id, url)
    return round_id


def resume_round(round_id: int, url: str | None = None) -> int:
    """Start a failed or cancelled round again; stages already completed are skipped."""
    url = database_url(url)
    with session_scope(url) as session:
        reap_dead_rounds(session)
        row = _require(session, round_id)
        if row.status not in (RoundStatus.failed.value, RoundStatus.cancelled.value):
            raise StoreError(f"round {round_id}: is {row.status}; only a failed or cancelled round can be resumed")
        if row.parent_version_id is not None:
            refuse_if_parent_busy(session, session.get_one(ModelVersion, row.parent_version_id), except_round=round_id)
        config_text, config_path = row.config_yaml, row.config_path
        transition(row, RoundStatus.queued.value, error=None, finished_at=None)
    from rlhf.training.config import parse_round_config

    _spawn(parse_round_config(config_text, config_path or f"round {round_id}"), round_id, url)
    return round_id


def cancel_round(round_id: int, url: str | None = None) -> Round:
    """Mark the round cancelled and stop its process group (the round's SIGTERM handler exits cleanly)."""
    with session_scope(url) as session:
        row = _require(session, round_id)
        if row.status not in ACTIVE:
            raise StoreError(f"round {round_id}: is {row.status}, not queued or running")
        transition(row, RoundStatus.cancelled.value, error="cancelled by user", finished_at=utcnow())
        pid = row.pid
    if pid and process_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    return row


def process_alive(pid: int) -> bool:
    """True if `pid` is a running (not zombie) process of a round."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return looks_like_a_round(state, cmdline)


def looks_like_a_round(state: str, cmdline: bytes) -> bool:
    """A live round process, judged from /proc: not a zombie, and running `rlhf.training.recipe` (not a reused pid).

    An empty command line is a process in the middle of exec: Popen returns (vfork) once the new
    address space is in place but before the kernel has recorded the new argv, so a round
    checked right after its start can show none for a moment.
    """
    if state in ("Z", "X"):
        return False
    return not cmdline.strip() or b"rlhf.training.recipe" in cmdline


def reap_dead_rounds(session: Session) -> list[Round]:
    """Mark failed every running round whose process is gone (killed, OOM, crashed before it could say)."""
    dead = []
    for row in session.exec(select(Round).where(Round.status == RoundStatus.running.value)).all():
        if row.pid is None or process_alive(row.pid):
            continue
        transition(
            row,
            RoundStatus.failed.value,
            finished_at=utcnow(),
            error=(
                f"process {row.pid} died during stage {row.stage or 'start'} without reporting "
                f"(killed, out of memory, or crashed); see {Path(row.work_dir or '.') / 'process.log'}"
            ),
        )
        dead.append(row)
    session.flush()
    return dead


def list_rounds(url: str | None = None) -> list[Round]:
    with session_scope(url) as session:
        reap_dead_rounds(session)
        return list(session.exec(select(Round).order_by(col(Round.id))).all())


def get_round(round_id: int, url: str | None = None) -> Round:
    with session_scope(url) as session:
        reap_dead_rounds(session)
        return _require(session, round_id)


def _require(session: Session, round_id: int) -> Round:
    row = session.get(Round, round_id)
    if row is None:
        raise StoreError(f"round: no round {round_id}")
    return row


def follow(round_id: int, url: str | None = None, poll: float = 0.5, bar=None) -> Round:
    """Wait for the round to end, showing stage and step/total on a tqdm bar; Ctrl-C cancels it."""
    from tqdm import tqdm

    bar = bar or tqdm(total=0, unit="step", dynamic_ncols=True)
    stage = None
    try:
        while True:
            row = get_round(round_id, url)
            progress = row.progress or {}
            if progress.get("stage") != stage:
                stage = progress.get("stage")
                bar.reset(total=progress.get("total") or 0)
            bar.set_description(f"round {round_id} {stage or row.status}")
            if progress.get("total"):
                bar.total = progress["total"]
                bar.n = progress.get("step") or 0
            postfix = {
                k: f"{progress[k]:.4g}"
                for k in ("loss", "reward_accuracy", "kl")
                if isinstance(progress.get(k), (int, float))
            }
            if progress.get("eta_s") is not None:
                postfix["eta"] = f"{progress['eta_s']:.0f}s"
            bar.set_postfix(postfix, refresh=False)
            bar.refresh()
            if row.status not in ACTIVE:
                return row
            time.sleep(poll)
    except KeyboardInterrupt:
        cancel_round(round_id, url)
        return get_round(round_id, url)
    finally:
        bar.close()


def wait(round_id: int, url: str | None = None, timeout: float = 600, poll: float = 0.2) -> Round:
    """Block until the round is no longer queued or running (for scripts and tests)."""
    deadline = time.monotonic() + timeout
    while True:
        row = get_round(round_id, url)
        if row.status not in ACTIVE:
            return row
        if time.monotonic() > deadline:
            raise TimeoutError(f"round {round_id}: still {row.status} after {timeout}s")
        time.sleep(poll)
