"""Compare's criterion questions (`queue.questions`): checked in the config, answered over HTTP, exported per criterion."""

from __future__ import annotations

import pytest
from sqlmodel import select

from feedback_app.config import AppConfig, ConfigError, load_app_config
from storage.db import session_scope
from storage.export import ExportOptions, build_export
from storage.models import Judgment
from tests.helpers import client, running_app, seed

USERS = {"ann1": "annotator"}


@pytest.mark.parametrize(
    ("questions", "problem"),
    [("[helpful, helpful]", "helpful repeated"), ("[two words]", "questions.0"), ("helpful", "questions")],
)
def test_bad_questions_are_refused_naming_the_key(tmp_path, questions, problem):
    path = tmp_path / "app.yaml"
    path.write_text(f"queue:\n  questions: {questions}\n")
    with pytest.raises(ConfigError, match=problem) as error:
        load_app_config(path)
    assert "queue.questions" in str(error.value) and "line 2" in str(error.value)


def test_the_demo_asks_two_criteria():
    assert load_app_config("app_demo.yaml").questions == ("helpful", "harmless")


def test_each_criterion_is_required_stored_canonically_and_exported_on_its_own(sqlite_url):
    seed(sqlite_url, users=USERS, prompts=2, overlap=1)
    with running_app(sqlite_url, AppConfig(questions=("helpful", "harmless"))) as server:
        c = client(server, "ann1")
        token = c.predict(api_name="/pairwise_next")[3]
        with pytest.raises(Exception, match="Answer harmless too"):
            c.predict(token, "A (left)", "B (right)", None, api_name="/pairwise_submit")
        with session_scope(sqlite_url) as session:
            assert session.exec(select(Judgment)).all() == []  # refused: nothing stored, the item stays
        c.predict(token, "A (left)", "B (right)", "Tie", api_name="/pairwise_submit")

    with session_scope(sqlite_url) as session:
        (judgment,) = session.exec(select(Judgment)).all()
        left, right = judgment.shown_order
        side = {
            left: "a" if left == judgment.generation_ids[0] else "b",
            right: "a" if right == judgment.generation_ids[0] else "b",
        }
        assert judgment.payload["choice"] == side[left]
        assert judgment.payload["criteria"] == {"helpful": side[right], "harmless": "tie"}
        overall, _ = build_export(session, ExportOptions(kind="preference", test_fraction=0))
        helpful, manifest = build_export(
            session, ExportOptions(kind="preference", test_fraction=0, criterion="helpful")
        )
        harmless, tied = build_export(session, ExportOptions(kind="preference", test_fraction=0, criterion="harmless"))
    (row,) = overall["train"]
    (flipped,) = helpful["train"]
    assert (flipped["chosen"], flipped["rejected"]) == (row["rejected"], row["chosen"])
    assert manifest["criterion"] == "helpful" and harmless["train"] == []  # a tie is no preference pair
    assert tied["criterion"] == "harmless"
