"""The round lifecycle: the moves `transition` allows, the ones it refuses, and that job code goes through it."""

from __future__ import annotations

import inspect

import pytest

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
