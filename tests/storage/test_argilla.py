"""Argilla 2.x exports imported as judgments, written here the way the `argilla` SDK writes them:
`Dataset.to_disk` (`.argilla/settings.json`, `.argilla/dataset.json`, nested `records.json`) and the flat
`records.to_datasets()` rows, as `Dataset.to_hub` pushes them (parquet under `data/`) or `save_to_disk` keeps them."""

import json
import uuid
from collections import defaultdict

import pytest
from datasets import Dataset
from sqlmodel import func, select

from rlhf.cli import main
from storage.argilla import Fields, import_argilla
from storage.crud import StoreError
from storage.db import session_scope
from storage.export import ExportOptions, build_export
from storage.imports import ImportFailed
from storage.models import Judgment, User

DATASET_ID = "0f0c7d34-5a41-4b7e-9a61-2f1d1c9b7e10"
ANN, BOB, CAT, DAN = (str(uuid.uuid5(uuid.NAMESPACE_URL, f"argilla-user-{n}")) for n in range(4))
STAMP = "2026-11-29T09:49:44.303859"


def _property(name, kind, **settings):
    """A field or question as `Settings.serialize()` writes it (type both inside `settings` and at the top)."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "name": name,
        "title": name.replace("_", " ").capitalize(),
        "description": None,
        "required": True,
        "settings": {"type": kind, **settings},
        "inserted_at": STAMP,
        "updated_at": STAMP,
        "type": kind,
    }


def text_field(name):
    return _property(name, "text", use_markdown=False)


def labels(name, values):
    return _property(
        name, "label_selection", options=[{"text": t, "value": v} for v, t in values], visible_options=None
    )


def rating(name, low=1, high=5):
    return _property(name, "rating", options=[{"value": v} for v in range(low, high + 1)])


def ranking(name, values):
    return _property(name, "ranking", options=[{"text": v, "value": v, "description": None} for v in values])


def text_question(name):
    return _property(name, "text", use_markdown=False)


def settings_json(fields, questions):
    return {
        "guidelines": None,
        "questions": questions,
        "fields": fields,
        "vectors": [],
        "metadata": [],
        "allow_extra_metadata": False,
        "distribution": {"strategy": "overlap", "min_submitted": 1},
        "mapping": None,
    }


def record(number, fields, responses):
    """`Record.to_dict()`: responses keyed by question, one {value, user_id, status} per user."""
    by_question = defaultdict(list)
    for user, status, answers in responses:
        for question, value in answers.items():
            by_question[question].append({"value": value, "user_id": user, "status": status})
    return {
        "id": f"rec-{number}",
        "fields": fields,
        "metadata": {},
        "suggestions": {},
        "responses": dict(by_question),
        "vectors": {},
        "status": "completed",
        "_server_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"record-{number}")),
    }


def flat(records):
    """`GenericIO._record_to_dict(flatten=True)` then `to_dict(orient="names")`: the columns `to_datasets` builds."""
    rows = []
    for nested in records:
        row = {
            k: v for k, v in nested.items() if k not in ("fields", "metadata", "vectors", "responses", "suggestions")
        }
        row.update(**nested["fields"], **nested["metadata"], **nested["vectors"])
        for question, answers in nested["responses"].items():
            row[f"{question}.responses"] = [a["value"] for a in answers]
            row[f"{question}.responses.users"] = [a["user_id"] for a in answers]
            row[f"{question}.responses.status"] = [a["status"] for a in answers]
        rows.append(row)
    keys = {key for row in rows for key in row}
    return {key: [row.get(key) for row in rows] for key in sorted(keys, key=lambda k: (k.count("."), k))}


def write_export(folder, settings, records, form="disk"):
    (folder / ".argilla").mkdir(parents=True)
    (folder / ".argilla" / "settings.json").write_text(json.dumps(settings))
    dataset = {"id": DATASET_ID, "name": "prefs", "guidelines": None, "allow_extra_metadata": False, "status": "ready"}
    (folder / ".argilla" / "dataset.json").write_text(json.dumps(dataset))
    if form == "disk":
        (folder / "records.json").write_text(json.dumps(records))
    elif form == "hub":
        (folder / "data").mkdir()
        Dataset.from_dict(flat(records)).to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    else:
        Dataset.from_dict(flat(records)).save_to_disk(str(folder))
    return folder


PAIRS = [  # (prompt, response1, response2, ann's, bob's and cat's choices)
    ("Name a colour.", "Blue.", "I cannot answer that.", ["response1", "response1", "response2"]),
    ("Say hello.", "Go away.", "Hello!", ["response2", "response2", "tie"]),
    ("Count to three.", "1, 2, 3", "one two", ["response1", "response2", "response1"]),
]
PREFERENCE_SETTINGS = settings_json(
    [text_field("prompt"), text_field("response1"), text_field("response2")],
    [
        labels("preference", [("response1", "Response 1"), ("response2", "Response 2"), ("tie", "Tie")]),
        text_question("why"),
    ],
)


def preference_records():
    records = []
    for number, (prompt, first, second, choices) in enumerate(PAIRS, start=1):
        responses = [
            (u, "submitted", {"preference": c, "why": f"by {u[:4]}"}) for u, c in zip((ANN, BOB, CAT), choices)
        ]
        responses.append((DAN, "discarded" if number == 1 else "draft", {"preference": "response1"}))
        records.append(record(number, {"prompt": prompt, "response1": first, "response2": second}, responses))
    return records


def test_to_disk_export_gives_the_majority_preference_and_reimport_is_skipped(sqlite_url, tmp_path):
    folder = write_export(tmp_path / "prefs", PREFERENCE_SETTINGS, preference_records())
    report = import_argilla(folder, url=sqlite_url, users={ANN: "ann", BOB: "bob"})

    assert (report.records, report.created, report.discarded, report.drafts) == (9, 9, 1, 2)
    assert sorted(report.users_created) == sorted(["ann", "bob", f"argilla-user-{CAT[:8]}"])
    with session_scope(sqlite_url) as session:
        rows, _ = build_export(session, ExportOptions(kind="preference", test_fraction=0))
        stored = session.exec(select(Judgment)).all()
    pairs = {
        r["prompt"][-1]["content"]: (r["chosen"][-1]["content"], r["rejected"][-1]["content"]) for r in rows["train"]
    }
    assert pairs == {
        "Name a colour.": ("Blue.", "I cannot answer that."),  # 2 of 3 chose response1
        "Say hello.": ("Hello!", "Go away."),  # two for response2, one tie
        "Count to three.": ("1, 2, 3", "one two"),
    }
    assert sorted(j.payload["choice"] for j in stored) == ["a", "a", "a", "a", "b", "b", "b", "b", "tie"]
    assert {j.payload["comment"] for j in stored} == {f"by {u[:4]}" for u in (ANN, BOB, CAT)}

    again = import_argilla(folder, url=sqlite_url, users={ANN: "ann", BOB: "bob"})
    assert (again.created, again.duplicates) == (0, 9)
    assert "9 imported" in report.summary() and "1 discarded and 2 draft" in report.summary()


RATED_SETTINGS = settings_json(
    [text_field("instruction"), text_field("response1"), text_field("response2")],
    [rating("rating_response2"), ranking("rank", ["response1", "response2"]), text_question("fix")],
)


def rated_records():
    fields = {"instruction": "Spell cat.", "response1": "kat", "response2": "c-a-t"}
    return [
        record(
            1,
            fields,
            [
                (ANN, "submitted", {"rating_response2": 4}),
                (BOB, "submitted", {"rank": ["response2", "response1"], "fix": "c, a, t"}),
                (CAT, "submitted", {"fix": "cat"}),
            ],
        ),
        record(2, {"instruction": "Say hi.", "response1": "Hi!", "response2": "Bye."}, []),  # not annotated yet
    ]


@pytest.mark.parametrize("form", ["hub", "save_to_disk", "disk"])
def test_ratings_rankings_and_corrections_in_every_form_with_the_prompt_inferred(sqlite_url, tmp_path, form):
    folder = write_export(tmp_path / form, RATED_SETTINGS, rated_records(), form=form)
    report = import_argilla(folder, url=sqlite_url)

    assert (report.records, report.created) == (3, 3)
    with session_scope(sqlite_url) as session:
        by_kind = {j.kind: j for j in session.exec(select(Judgment))}
        names = set(session.exec(select(User.username)))
        rated = session.get(Judgment, by_kind["rating"].id)
        from storage.models import Generation

        texts = {g.id: g.text for g in session.exec(select(Generation))}
    assert rated.payload == {"score": 4} and [texts[i] for i in rated.generation_ids] == ["c-a-t"]
    assert [texts[i] for i in by_kind["ranking"].generation_ids] == ["c-a-t", "kat"]
    assert by_kind["ranking"].payload == {"comment": "c, a, t"}
    assert by_kind["correction"].payload == {"corrected": "cat"}
    assert [texts[i] for i in by_kind["correction"].generation_ids] == ["kat"]
    assert {f"argilla-user-{u[:8]}" for u in (ANN, BOB, CAT)} <= names


def test_bad_answers_name_file_row_and_column_and_import_nothing(sqlite_url, tmp_path):
    records = rated_records()
    records[0]["responses"]["rating_response2"][0]["value"] = 7
    records[0]["responses"]["rank"][0]["value"] = ["response2", "response3"]
    hub = write_export(tmp_path / "hub", RATED_SETTINGS, records, form="hub")
    with pytest.raises(ImportFailed) as failed:
        import_argilla(hub, url=sqlite_url)
    text = str(failed.value)
    assert "train-00000-of-00001.parquet: row 1 (id rec-1): rating_response2.responses[0]: 7 is out of range" in text
    assert "row 1 (id rec-1): rank.responses[0]: ranks fields the record does not hold: response3" in text

    prefs = preference_records()
    prefs[1]["responses"]["preference"][0]["value"] = "neither of them"
    disk = write_export(tmp_path / "disk", PREFERENCE_SETTINGS, prefs)
    with pytest.raises(ImportFailed, match=r"records.json: record 2 \(id rec-2\): responses.preference\[0\].value: "):
        import_argilla(disk, url=sqlite_url)
    with session_scope(sqlite_url) as session:
        assert session.exec(select(func.count()).select_from(Judgment)).one() == 0

    with pytest.raises(ImportFailed, match=r"not an Argilla export: no \.argilla/settings\.json"):
        import_argilla(tmp_path, url=sqlite_url)
    with pytest.raises(StoreError, match="no such folder"):
        import_argilla(tmp_path / "missing", url=sqlite_url)


def test_ambiguous_fields_ask_for_flags_and_the_flags_settle_them(sqlite_url, tmp_path):
    settings = settings_json(
        [text_field("question"), text_field("system_prompt"), text_field("answer_a"), text_field("answer_b")],
        [labels("best", [("answer_a", "A"), ("answer_b", "B")])],
    )
    fields = {"question": "2+2?", "system_prompt": "Be brief.", "answer_a": "4", "answer_b": "5"}
    folder = write_export(
        tmp_path / "export", settings, [record(1, fields, [(ANN, "submitted", {"best": "answer_a"})])]
    )
    with pytest.raises(ImportFailed, match="which field is the prompt\\? question, system_prompt all look like one"):
        import_argilla(folder, url=sqlite_url)

    report = import_argilla(
        folder, url=sqlite_url, fields=Fields(prompt="question", responses=("answer_a", "answer_b"))
    )
    assert report.created == 1
    with session_scope(sqlite_url) as session:
        assert session.exec(select(Judgment.payload)).one() == {"choice": "a"}


def test_an_export_of_only_discarded_and_draft_responses_is_refused(sqlite_url, tmp_path):
    records = [
        record(1, {"prompt": "Hi.", "response1": "Hello.", "response2": "Yo."}, [(ANN, "discarded", {"why": "spam"})]),
        record(
            2, {"prompt": "Bye.", "response1": "Bye.", "response2": "Ciao."}, [(BOB, "draft", {"preference": "tie"})]
        ),
    ]
    folder = write_export(tmp_path / "export", PREFERENCE_SETTINGS, records)
    with pytest.raises(ImportFailed, match="all 2 response\\(s\\) are discarded or drafts"):
        import_argilla(folder, url=sqlite_url)


def test_cli_imports_from_argilla_with_a_users_file(sqlite_url, tmp_path, capsys):
    folder = write_export(tmp_path / "prefs", PREFERENCE_SETTINGS, preference_records(), form="hub")
    users = tmp_path / "users.json"
    users.write_text(json.dumps({ANN: "ann"}))
    code = main(["judgments", "import", str(folder), "--from", "argilla", "--users", str(users), "--db", sqlite_url])
    out = capsys.readouterr().out
    assert code in (0, None) and "9 imported" in out and "1 discarded and 2 draft" in out and "ann" in out


def test_a_chat_field_prompt_joins_the_conversation_imported_with_its_turns(sqlite_url, tmp_path):
    from storage.imports import import_prompts
    from storage.models import Prompt

    turns = [
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And now?"},
    ]
    (tmp_path / "prompts.jsonl").write_text(json.dumps({"messages": turns}) + "\n")
    import_prompts(tmp_path / "prompts.jsonl", url=sqlite_url)
    settings = settings_json(
        [_property("prompt", "chat", use_markdown=True), text_field("response1"), text_field("response2")],
        [labels("preference", [("1", "Response 1"), ("2", "Response 2"), ("3", "Both bad")])],  # named by their texts
    )
    fields = {"prompt": turns, "response1": "Now this.", "response2": "Nothing."}
    folder = write_export(tmp_path / "chat", settings, [record(1, fields, [(ANN, "submitted", {"preference": "2"})])])

    assert import_argilla(folder, url=sqlite_url).created == 1
    with session_scope(sqlite_url) as session:
        prompt = session.exec(select(Prompt)).one()
        judgment = session.exec(select(Judgment)).one()
    assert judgment.prompt_id == prompt.id and prompt.messages == turns and judgment.payload == {"choice": "b"}
