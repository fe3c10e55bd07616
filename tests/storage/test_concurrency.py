"""16 processes × 500 judgments against one store: nothing lost, nothing doubled, no lock errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage import crud
from storage.db import session_scope
from storage.models import Judgment

pytestmark = pytest.mark.slow  # 16 writer subprocesses

WORKERS, PER_WORKER = 16, 500


def test_sixteen_writer_processes(db_url):
    with session_scope(db_url) as session:
        user = crud.create_user(session, username="writer")
        prompt, _ = crud.add_prompt(session, text="P")
        a = crud.get_or_create_generation(session, prompt_id=prompt.id, text="A")
        b = crud.get_or_create_generation(session, prompt_id=prompt.id, text="B")
        ids = (prompt.id, user.id, [a.id, b.id])
    script = Path(__file__).with_name("concurrent_writer.py")
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                db_url,
                str(w),
                str(PER_WORKER),
                str(ids[0]),
                str(ids[1]),
                json.dumps(ids[2]),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    results = [json.loads(w.communicate(timeout=600)[0]) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert [e for r in results for e in r["errors"]] == []
    with session_scope(db_url) as session:
        total = session.execute(select(func.count()).select_from(Judgment)).scalar()
        distinct = session.execute(select(func.count(func.distinct(Judgment.client_key)))).scalar()
    assert total == distinct == WORKERS * PER_WORKER
