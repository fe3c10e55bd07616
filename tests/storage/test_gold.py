"""Gold-item import: all or nothing, errors naming line and field, and gold that analytics scores."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func
from sqlmodel import select

from rlhf.cli import main
from rlhf.quality.analytics import annotator_report
from storage import crud
from storage.db import session_scope
from storage.gold import import_gold
from storage.imports import ImportFailed
from storage.models import AnnotationItem, Generation, Prompt

GOLD = [
    {"prompt": "2+2?", "a": "4", "b": "5", "choice": "a"},
    {"prompt": "Capital of France?", "a": "Berlin", "b": "Paris", "choice": "b"},
    {"prompt": "Say hi", "response": "hi", "score": 5},
    {"kind": "pairwise", "prompt": "Pick one", "a": "x", "b": "y", "choice": "tie"},
]


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def counts(url):
    with session_scope(url) as session:
        return tuple(
            session.exec(select(func.count()).select_from(table)).one()
            for table in (Prompt, Generation, AnnotationItem)
        )


def test_gold_import_creates_gold_items_and_skips_repeats(db_url, tmp_path):
    path = write_jsonl(tmp_path / "gold.jsonl", GOLD)
    report = import_gold(path, url=db_url)
    assert (report.records, report.created, report.duplicates) == (4, 4, 0)

    with session_scope(db_url) as session:
        items = session.exec(select(AnnotationItem).order_by(AnnotationItem.id)).all()
        generations = {g.id: g for g in session.exec(select(Generation))}
        assert [item.purpose for item in items] == ["gold"] * 4
        assert [item.kind for item in items] == ["pairwise", "pairwise", "rating", "pairwise"]
        assert [item.gold_answer for item in items] == [
            {"choice": "a"},
            {"choice": "b"},
            {"score": 5},
            {"choice": "tie"},
        ]
        assert [generations[g].text for g in items[1].generation_ids] == ["Berlin", "Paris"]
        assert all(g.model_version_id is None for g in generations.values())

    again = import_gold(path, url=db_url)
    assert (again.created, again.duplicates) == (0, 4)
    assert counts(db_url) == (4, 7, 4)


def test_malformed_line_exits_2_names_line_and_field_and_changes_nothing(db_url, tmp_path, capsys):
    import_gold(write_jsonl(tmp_path / "first.jsonl", GOLD[:1]), url=db_url)
    before = counts(db_url)
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            GOLD[1],
            {"prompt": "Q", "a": "yes", "b": "no", "choice": "maybe"},
            "{not json",
            {"prompt": "Q2", "response": "r", "score": 9},
            GOLD[2],
        ],
    )
    assert main(["gold", "import", str(bad), "--db", db_url]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: choice: 'maybe' is not one of a, b, tie, both_bad" in err
    assert f"{bad}:3: json: not valid JSON" in err
    assert f"{bad}:4: score: 9 is out of range 1..5" in err
    assert "nothing was imported" in err
    assert counts(db_url) == before


def test_contradicting_answers_are_refused(db_url, tmp_path):
    same_file = write_jsonl(tmp_path / "twice.jsonl", [GOLD[0], {**GOLD[0], "choice": "b"}])
    with pytest.raises(ImportFailed, match=r"twice.jsonl:2: choice: 'b' contradicts 'a' given for the same item"):
        import_gold(same_file, url=db_url)

    import_gold(write_jsonl(tmp_path / "gold.jsonl", GOLD), url=db_url)
    before = counts(db_url)
    changed = write_jsonl(
        tmp_path / "changed.jsonl",
        [{"prompt": "New?", "a": "n", "b": "m", "choice": "a"}, {**GOLD[0], "choice": "tie"}],
    )
    with pytest.raises(ImportFailed, match=r"changed.jsonl:2: choice: the store already has this gold item"):
        import_gold(changed, url=db_url)
    assert counts(db_url) == before


def test_cli_reports_and_analytics_scores_the_gold(db_url, tmp_path, capsys):
    path = write_jsonl(tmp_path / "gold.jsonl", [GOLD[0], GOLD[1], {"prompt": "Q3", "a": "p", "b": "q", "choice": "a"}])
    assert main(["gold", "import", str(path), "--db", db_url]) == 0
    assert "3 gold items read, 3 imported" in capsys.readouterr().out

    with session_scope(db_url) as session:
        careful = crud.create_user(session, username="careful")
        careless = crud.create_user(session, username="careless")
        items = session.exec(select(AnnotationItem).order_by(AnnotationItem.id)).all()
        for item in items:
            a, b = item.generation_ids
            right = item.gold_answer["choice"]
            for user, choice in ((careful, right), (careless, "b" if right == "a" else "a")):
                crud.add_judgment(
                    session,
                    kind="pairwise",
                    user_id=user.id,
                    prompt_id=item.prompt_id,
                    generation_ids=[a, b],
                    payload={"choice": choice},
                    item_id=item.id,
                    client_key=f"{user.username}-{item.id}",
                )
    with session_scope(db_url) as session:
        accuracy = {row.username: (row.gold_accuracy, row.gold_judgments) for row in annotator_report(session)}
    assert accuracy == {"careful": (1.0, 3), "careless": (0.0, 3)}
