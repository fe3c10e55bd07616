"""Label Studio exports (JSON and JSON_MIN) imported as judgments, written here the way Label Studio writes them."""

import json

import pytest
from sqlmodel import func, select

from rlhf.cli import main
from storage.db import session_scope
from storage.export import ExportOptions, build_export
from storage.imports import ImportFailed
from storage.label_studio import Fields, import_label_studio
from storage.models import Judgment, User

TASKS = [  # (prompt, left, right, the three annotators' choices)
    ("Name a colour.", "Blue.", "I cannot answer that.", ["left", "left", "right"]),
    ("Say hello.", "Go away.", "Hello!", ["right", "right", "right"]),
    ("Count to three.", "1, 2, 3", "one two", ["left", "right", "left"]),
]


def ls_json(tasks=TASKS, cancel_last=True):
    exported = []
    for number, (prompt, left, right, choices) in enumerate(tasks, start=1):
        annotations = [
            {
                "id": 100 * number + who,
                "completed_by": who,
                "was_cancelled": False,
                "lead_time": 4.25,
                "result": [
                    {"from_name": "pw", "to_name": "answer1,answer2", "type": "pairwise", "value": {"selected": c}},
                    {"from_name": "why", "to_name": "prompt", "type": "textarea", "value": {"text": [f"by {who}"]}},
                ],
            }
            for who, c in enumerate(choices, start=1)
        ]
        if cancel_last:
            annotations.append({"id": 100 * number + 9, "completed_by": 4, "was_cancelled": True, "result": []})
        exported.append(
            {"id": number, "data": {"prompt": prompt, "answer1": left, "answer2": right}, "annotations": annotations}
        )
    return exported


def write(path, content):
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def test_three_annotators_per_task_give_the_majority_preference(sqlite_url, tmp_path):
    path = write(tmp_path / "project-1.json", ls_json())
    report = import_label_studio(path, url=sqlite_url, users={"1": "ann", "2": "bob"})

    assert (report.records, report.created, report.cancelled) == (9, 9, 3)
    assert sorted(report.users_created) == ["ann", "bob", "ls-user-3"]
    with session_scope(sqlite_url) as session:
        rows, manifest = build_export(session, ExportOptions(kind="preference", test_fraction=0))
        stored = session.exec(select(Judgment)).all()
    pairs = {
        row["prompt"][-1]["content"]: (row["chosen"][-1]["content"], row["rejected"][-1]["content"])
        for row in rows["train"]
    }
    assert pairs == {
        "Name a colour.": ("Blue.", "I cannot answer that."),  # 2 of 3 chose left
        "Say hello.": ("Hello!", "Go away."),
        "Count to three.": ("1, 2, 3", "one two"),
    }
    assert {j.duration_ms for j in stored} == {4250}
    assert sorted(j.payload.get("comment") for j in stored)[:3] == ["by 1", "by 1", "by 1"]

    again = import_label_studio(path, url=sqlite_url, users={"1": "ann", "2": "bob"})
    assert (again.created, again.duplicates) == (0, 9)


def test_json_min_with_ratings_and_corrections_and_inferred_controls(sqlite_url, tmp_path):
    rows = [
        {
            "id": 1,
            "prompt": "Say hi.",
            "answer1": "Hi!",
            "answer2": "Bye.",
            "choice": "right",
            "annotator": "a@x.org",
            "annotation_id": 7,
            "lead_time": 2.0,
        },
        {"id": 2, "prompt": "Rate me.", "answer1": "A fine answer.", "quality": 4, "annotator": 3, "annotation_id": 8},
        {"id": 3, "prompt": "Fix me.", "answer1": "teh cat", "fixed": "the cat", "annotator": 3, "annotation_id": 9},
    ]
    path = write(tmp_path / "min.json", rows)
    report = import_label_studio(path, url=sqlite_url, fields=Fields(textarea="fixed"))
    assert report.created == 3
    with session_scope(sqlite_url) as session:
        kinds = {j.kind: j.payload for j in session.exec(select(Judgment))}
        names = set(session.exec(select(User.username)))
    assert kinds["pairwise"]["choice"] == "b" and kinds["rating"]["score"] == 4
    assert kinds["correction"]["corrected"] == "the cat"
    assert {"a@x.org", "ls-user-3"} <= names


def test_bad_export_names_task_and_field_and_imports_nothing(sqlite_url, tmp_path):
    tasks = ls_json(cancel_last=False)
    tasks[1]["annotations"][0]["result"][0]["value"]["selected"] = "middle"
    tasks[2]["data"]["answer2"] = tasks[2]["data"]["answer1"]
    path = write(tmp_path / "bad.json", tasks)
    with pytest.raises(ImportFailed) as failed:
        import_label_studio(path, url=sqlite_url)
    text = str(failed.value)
    assert "task 2 (id 2), annotation 1: annotations[0].result[0].value.selected: expected 'left' or 'right'" in text
    assert "task 3 (id 3), annotation 1: answer2:" in text and "same text as a" in text
    with session_scope(sqlite_url) as session:
        assert session.exec(select(func.count()).select_from(Judgment)).one() == 0

    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": 1,\n "data": }]')
    with pytest.raises(ImportFailed, match=r"broken.json:2: json: not valid JSON"):
        import_label_studio(broken, url=sqlite_url)


def test_cli_imports_from_label_studio_with_a_users_file(sqlite_url, tmp_path, capsys):
    path = write(tmp_path / "project.json", ls_json())
    users = write(tmp_path / "users.json", {"1": "ann"})
    code = main(["judgments", "import", str(path), "--from", "label-studio", "--users", str(users), "--db", sqlite_url])
    out = capsys.readouterr().out
    assert code in (0, None) and "9 imported" in out and "3 cancelled" in out and "ann" in out
