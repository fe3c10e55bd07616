"""Several app processes on one PostgreSQL store: claims, overlap and idempotent submits hold across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from feedback_app.http_client import AppClient, free_port
from storage.db import session_scope
from storage.models import AnnotationItem, Judgment
from tests.helpers import PASSWORD, seed_store

ROOT = Path(__file__).resolve().parents[2]
TOKEN = 3  # pairwise outputs: prompt, left, right, token, ...
ANNOTATORS, ITEMS, OVERLAP = 16, 60, 3


def serve(url: str, port: int, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "rlhf.cli", "serve", "--db", url, "--port", str(port), "--no-fill"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
        )


def wait_up(base: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{base}/login", timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base} never came up: {log.read_text()[-3000:]}")


def annotate(base: str, username: str, acknowledged: list, errors: list) -> None:
    """Vote until the queue has nothing for this annotator; every 5th vote is sent twice (a double click)."""
    try:
        with AppClient(base, username, PASSWORD) as tab:
            token = tab.call("pairwise_next")[TOKEN]
            count = 0
            while token:
                reply = tab.call("pairwise_submit", token, "A (left)")
                count += 1
                if count % 5 == 0:
                    tab.call("pairwise_submit", token, "A (left)")
                token = reply[TOKEN]
            acknowledged.append(count)
    except Exception as error:  # reported by the test, not lost in a thread
        errors.append(f"{username}: {error!r}")


@pytest.mark.slow  # two app processes and 16 clients
def test_two_app_processes_on_one_postgres_store_lose_and_duplicate_nothing(pg_url, tmp_path):
    names = [f"ann{i}" for i in range(ANNOTATORS)]
    seed_store(pg_url, users=names, prompts=ITEMS, enqueue=["pairwise"], overlap=OVERLAP)
    ports = [free_port(), free_port()]
    processes = [serve(pg_url, port, tmp_path / f"app{port}.log") for port in ports]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base, process, port in zip(bases, processes, ports):
            wait_up(base, process, tmp_path / f"app{port}.log")
        acknowledged: list[int] = []
        errors: list[str] = []
        threads = [
            threading.Thread(target=annotate, args=(bases[i % 2], name, acknowledged, errors))
            for i, name in enumerate(names)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
        assert not errors, errors
        assert len(acknowledged) == ANNOTATORS
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)

    with session_scope(pg_url) as session:
        rows = session.exec(select(func.count()).select_from(Judgment)).one()
        keys = session.exec(select(func.count(func.distinct(Judgment.client_key)))).one()
        pairs = session.exec(
            select(func.count()).select_from(select(Judgment.user_id, Judgment.item_id).distinct().subquery())
        ).one()
        per_item = session.exec(
            select(AnnotationItem.purpose, AnnotationItem.overlap, AnnotationItem.judged_count, func.count(Judgment.id))
            .join(Judgment, Judgment.item_id == AnnotationItem.id, isouter=True)
            .group_by(AnnotationItem.id)
        ).all()
    assert rows == sum(acknowledged)  # nothing lost
    assert keys == rows and pairs == rows  # no double click stored twice, nobody judged an item twice
    assert all(count == judged <= overlap for _, overlap, judged, count in per_item)  # none over its overlap
    train = [count for purpose, _, _, count in per_item if purpose == "train"]
    assert train == [OVERLAP] * ITEMS  # the queue drained: every slot filled once
    assert rows == ITEMS * OVERLAP + len(per_item) - ITEMS  # plus one judgment per swap check the app mixed in
