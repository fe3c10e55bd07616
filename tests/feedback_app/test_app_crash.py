"""SIGKILL the app (`rlhf serve`) while annotators submit: nothing acknowledged is lost, nothing doubled, the
store passes its integrity check, and a restarted app serves the same annotators on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from feedback_app.http_client import AppClient, error_of
from rlhf.integrity import check_store
from storage.db import dispose_engines, session_scope
from storage.migrate import upgrade
from storage.models import Judgment, User
from tests.helpers import PASSWORD, free_port, seed_store

ANNOTATORS, PROMPTS, KILL_AFTER = 4, 200, 120
TOKEN = 3
pytestmark = pytest.mark.slow


def seed(url: str, artifact: Path) -> None:
    seed_store(
        url,
        users=[f"a{i}" for i in range(ANNOTATORS)],
        prompts=PROMPTS,
        prompt_text="crash prompt {p}",
        artifact=str(artifact),
        enqueue=["pairwise"],
        overlap=ANNOTATORS,
    )


def serve(url: str, port: int, log: Path) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "rlhf"),
        "serve",
        "--db",
        url,
        "--port",
        str(port),
        "--no-fill",
    ]
    output = open(log, "ab")  # noqa: SIM115 (the server writes to it after this function returns)
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 401:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise AssertionError(f"the app did not start: {log.read_text()[-2000:]}")


def hammer(base: str, user: str, acked: dict, stop: threading.Event, errors: list) -> None:
    tab = AppClient(base, user, PASSWORD)
    token = tab.call("pairwise_next")[TOKEN]
    while token and not stop.is_set():
        try:
            reply = tab.post("pairwise_submit", token, "B (right)")
        except httpx.TransportError:
            return  # the server died under this request: its outcome is unknown
        if reply.status_code != 200:
            errors.append((user, reply.status_code, reply.text[:200]))
            return
        acked[user] = acked.get(user, 0) + 1
        token = reply.json()["data"][TOKEN]


def stored(url: str) -> tuple[dict[str, int], int, int]:
    with session_scope(url) as session:
        rows = session.exec(
            select(User.username, Judgment.item_id, Judgment.client_key).join(Judgment, Judgment.user_id == User.id)
        ).all()
    dispose_engines()
    counts: dict[str, int] = {}
    for name, _, _ in rows:
        counts[name] = counts.get(name, 0) + 1
    return counts, len({(name, item) for name, item, _ in rows}), len(rows)


def test_sigkilled_app_loses_nothing_acknowledged_and_serves_on(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    seed(url, tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = serve(url, port, tmp_path / "serve.log")
    acked: dict[str, int] = {}
    errors: list = []
    stop = threading.Event()
    try:
        names = [f"a{i}" for i in range(ANNOTATORS)]
        threads = [threading.Thread(target=hammer, args=(base, name, acked, stop, errors)) for name in names]
        old_tab = AppClient(base, "a0", PASSWORD)
        old_token = old_tab.call("pairwise_next")[TOKEN]
        for thread in threads:
            thread.start()
        while sum(acked.values()) < KILL_AFTER and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert sum(acked.values()) >= KILL_AFTER

        report = check_store(url)
        assert report.ok, report.problems
        counts, distinct, rows = stored(url)
        for name in names:
            assert acked.get(name, 0) <= counts.get(name, 0) <= acked.get(name, 0) + 1, (name, acked, counts)
        assert distinct == rows, "an item judged twice by one user"

        process = serve(url, port, tmp_path / "serve.log")
        assert old_tab.post("pairwise_next").status_code == 401, "logins do not survive a restart"
        fresh = AppClient(base, "a0", PASSWORD)
        token = fresh.call("pairwise_next")[TOKEN]
        stale = error_of(fresh.post("pairwise_submit", old_token, "A (left)"))
        assert stale.startswith("view: this page is out of date")
        for _ in range(5):
            token = fresh.call("pairwise_submit", token, "A (left)")[TOKEN]
        after, distinct, rows = stored(url)
        assert after["a0"] == counts.get("a0", 0) + 5 and distinct == rows
        print(
            f"\napp SIGKILL: {sum(acked.values())} acknowledged submits before the kill, all stored "
            f"({rows - 5} rows, at most one in-flight extra per annotator); integrity ok; restart serves on"
        )
    finally:
        stop.set()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
