"""The round lifecycle: the moves `transition` allows, the ones it refuses, and that job code goes through it."""

from __future__ import annotations

import inspect

import pytest
from sqlmodel import select

from rlhf.jobs import lifecycle, runner
from rlhf.training import progress, recipe
from storage.crud import StoreError
from storage.models import Round

ALLOWED = [
    ("queued", "running"),
    ("queued", "cancelled"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("failed", "queued"),
    ("cancelled", "queued"),
]
STATES = ["queued", "running", "succeeded", "failed", "cancelled"]


@pytest.mark.parametrize(("start", "to"), ALLOWED)
def test_allowed_moves_set_the_status_and_fields(start, to):
    row = Round(id=7, status=start)
    lifecycle.transition(row, to, error="why")
    assert (row.status, row.error) == (to, "why")


@pytest.mark.parametrize(("start", "to"), [(a, b) for a in STATES for b in STATES if (a, b) not in ALLOWED])
def test_refused_moves_name_the_round_and_both_states(start, to):
    row = Round(id=7, status=start)
    with pytest.raises(StoreError, match=f"round 7: cannot go from {start} to {to}"):
        lifecycle.transition(row, to)
    assert row.status == start


def test_the_reporter_refuses_status_writes_outside_transition():
    with pytest.raises(ValueError, match="transition"):
        progress.RoundReporter("sqlite://", 1, "log.jsonl").update(status="succeeded")


def test_job_code_writes_status_only_through_transition():
    for module in (runner, recipe, progress):
        source = inspect.getsource(module)
        assert ".status = " not in source and "status=RoundStatus" not in source, module.__name__
    assert "transition(" in inspect.getsource(runner) and "transition(" in inspect.getsource(recipe)


def test_runner_does_not_import_the_recipe_or_stages():
    source = inspect.getsource(runner)
    assert "rlhf.training.recipe import" not in source and "rlhf.training.stages" not in source


def test_a_second_round_on_a_parent_with_an_active_round_is_refused(sqlite_url):
    from rlhf.training.config import load_round_config
    from storage.db import session_scope
    from storage.models import ModelVersion

    config = load_round_config("configs/round_dpo_tiny.yaml")
    with session_scope(sqlite_url) as session:
        session.add(ModelVersion(name="base", base_model="t", artifact_path="/nowhere", status="ready", is_live=True))
    with session_scope(sqlite_url) as session:
        first = lifecycle.create_round(session, config=config, url=sqlite_url).id
    for status in ("queued", "running"):
        with session_scope(sqlite_url) as session:
            session.get_one(Round, first).status = status
        with (
            pytest.raises(StoreError, match=f"round {first} is already {status} on parent 'base'"),
            session_scope(sqlite_url) as session,
        ):
            lifecycle.create_round(session, config=config, url=sqlite_url)
    with session_scope(sqlite_url) as session:
        assert len(session.exec(select(Round)).all()) == 1
        session.get_one(Round, first).status = "cancelled"
    with session_scope(sqlite_url) as session:
        second = lifecycle.create_round(session, config=config, url=sqlite_url).id
    with pytest.raises(StoreError, match=f"round {second} is already queued"):
        runner.resume_round(first, sqlite_url)  # refused before any process starts
    with session_scope(sqlite_url) as session:
        assert session.get_one(Round, first).status == "cancelled"
