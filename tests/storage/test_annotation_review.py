import json

import pytest
from sqlmodel import select

from storage.annotation_review import Decision, recent_judgments, record_decisions, review_totals
from storage.crud import StoreError, create_user
from storage.db import read_scope, session_scope
from storage.export import ExportOptions, build_export, export_dataset
from storage.imports import import_judgments
from storage.models import Judgment, JudgmentReview


def load(db_url, tmp_path, records):
    path = tmp_path / "judgments.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    import_judgments(path, url=db_url)
    with read_scope(db_url) as session:
        return [j.id for j in session.exec(select(Judgment).order_by(Judgment.id))]


def pair(annotator, choice, prompt="P", a="A", b="B"):
    return {"kind": "pairwise", "annotator": annotator, "prompt": prompt, "a": a, "b": b, "choice": choice}


def reviewer(db_url, name="rev"):
    with session_scope(db_url) as session:
        return create_user(session, username=name, role="reviewer").id


def decide(db_url, reviewer_id, *decisions):
    with session_scope(db_url) as session:
        record_decisions(session, reviewer_id=reviewer_id, decisions=[Decision(*d) for d in decisions])


def export(db_url, kind):
    with session_scope(db_url) as session:
        splits, manifest = build_export(session, ExportOptions(kind=kind, test_fraction=0.0))
    return splits["train"], manifest


def contents(rows, column):
    return sorted(r[column][0]["content"] for r in rows)


def test_a_second_decision_replaces_the_first_with_its_own_reviewer_and_note(db_url, tmp_path):
    (judgment,) = load(db_url, tmp_path, [pair("u1", "a")])
    first, second = reviewer(db_url, "rev1"), reviewer(db_url, "rev2")
    decide(db_url, first, (judgment, "rejected", "picked the wrong side"))
    decide(db_url, second, (judgment, "accepted"))
    with read_scope(db_url) as session:
        (row,) = session.exec(select(JudgmentReview)).all()
        (shown,) = recent_judgments(session)
        totals = review_totals(session)
    assert (row.decision, row.reviewer_id, row.note) == ("accepted", second, None)
    assert (shown.decision, shown.reviewer, shown.prompt, shown.responses, shown.answer) == (
        "accepted",
        "rev2",
        "P",
        ["A", "B"],
        "A is better",
    )
    assert totals == {"accepted": 1, "rejected": 0, "unreviewed": 0}


def test_an_unknown_judgment_id_records_nothing_and_is_named(db_url, tmp_path):
    (judgment,) = load(db_url, tmp_path, [pair("u1", "a")])
    rev = reviewer(db_url)
    with pytest.raises(StoreError, match="No judgment with id 999"):
        decide(db_url, rev, (judgment, "rejected"), (999, "accepted"))
    with pytest.raises(StoreError, match="decision: 'maybe'"):
        decide(db_url, rev, (judgment, "maybe"))
    with read_scope(db_url) as session:
        assert session.exec(select(JudgmentReview)).all() == []


def test_unreviewed_filter_and_annotator_filter(db_url, tmp_path):
    first, second, third = load(db_url, tmp_path, [pair("u1", "a"), pair("u2", "b"), pair("u1", "a", prompt="Q")])
    decide(db_url, reviewer(db_url), (third, "accepted"))
    with read_scope(db_url) as session:
        assert [r.judgment_id for r in recent_judgments(session, unreviewed_only=True)] == [second, first]
        assert [r.judgment_id for r in recent_judgments(session, annotator="u1")] == [third, first]


def test_a_rejected_vote_changes_the_exported_pairs_and_the_manifest_counts_it(sqlite_url, tmp_path):
    u1, u2, u3 = load(sqlite_url, tmp_path, [pair("u1", "a"), pair("u2", "b"), pair("u3", "b")])
    train, manifest = export(sqlite_url, "preference")
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in train] == [("B", "A")]
    assert manifest["review"] == {"rejected_excluded": 0, "accepted": 0, "unreviewed": 3}

    rev = reviewer(sqlite_url)
    decide(sqlite_url, rev, (u2, "rejected", "spam"), (u3, "rejected"), (u1, "accepted"))
    train, manifest = export(sqlite_url, "preference")
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in train] == [("A", "B")]
    assert manifest["review"] == {"rejected_excluded": 2, "accepted": 1, "unreviewed": 0}

    written = export_dataset(tmp_path / "out", ExportOptions(kind="preference", test_fraction=0.0), url=sqlite_url)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["review"] == written["review"]


def test_a_rejected_latest_vote_does_not_bring_back_the_annotators_earlier_vote(db_url, tmp_path):
    _earlier, latest = load(db_url, tmp_path, [pair("u1", "a"), pair("u1", "b")])
    decide(db_url, reviewer(db_url), (latest, "rejected"))
    train, manifest = export(db_url, "preference")
    assert train == [] and manifest["left_out"] == {"rejected_in_review": 1}


def test_rejected_ratings_and_corrections_leave_unpaired_and_sft(db_url, tmp_path):
    good, bad, fixed = load(
        db_url,
        tmp_path,
        [
            {"kind": "rating", "annotator": "u1", "prompt": "P", "response": "great", "score": 5},
            {"kind": "rating", "annotator": "u1", "prompt": "P", "response": "awful", "score": 1},
            {"kind": "correction", "annotator": "u1", "prompt": "Q", "response": "teh", "corrected": "the"},
        ],
    )
    assert contents(export(db_url, "unpaired")[0], "completion") == ["awful", "great", "teh", "the"]
    assert contents(export(db_url, "sft")[0], "completion") == ["great", "the"]

    decide(db_url, reviewer(db_url), (good, "rejected"), (fixed, "rejected"))
    unpaired, manifest = export(db_url, "unpaired")
    assert contents(unpaired, "completion") == ["awful"]
    assert manifest["review"]["rejected_excluded"] == 2
    assert export(db_url, "sft")[0] == []
    assert export(db_url, "preference")[0] == []
