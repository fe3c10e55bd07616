import hashlib
import json

import pytest
from sqlmodel import select

from rlhf.cli import main
from storage import crud
from storage.db import dispose_engines, session_scope, sqlite_path
from storage.imports import ImportFailed, import_judgments, import_prompts
from storage.models import Generation, Judgment, Prompt, User


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


GOOD = [
    {"kind": "pairwise", "annotator": "ann1", "prompt": "Say hi", "a": "hi", "b": "go away", "choice": "a"},
    {"kind": "rating", "annotator": "ann2", "prompt": "Say hi", "response": "hi", "score": 5},
    {"kind": "ranking", "annotator": "ann1", "prompt": "Greet", "responses": ["hello", "hi", "yo"]},
    {"kind": "correction", "annotator": "ann3", "prompt": "Greet", "response": "yo", "corrected": "Hello there!"},
]


def test_prompt_import_jsonl_csv_parquet_and_duplicates(db_url, tmp_path):
    jsonl = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "one"}, {"prompt": "two", "tags": ["x"]}, {"prompt": "one"}])
    report = import_prompts(jsonl, url=db_url)
    assert (report.records, report.created, report.duplicates) == (3, 2, 1)

    csv_file = tmp_path / "p.csv"
    csv_file.write_text('prompt,tags\n"two",a\n"three, with comma","b,c"\n', encoding="utf-8")
    report = import_prompts(csv_file, url=db_url)
    assert (report.created, report.duplicates) == (1, 1)

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"prompt": "four"}, {"prompt": "one"}]), tmp_path / "p.parquet")
    report = import_prompts(tmp_path / "p.parquet", url=db_url)
    assert (report.created, report.duplicates) == (1, 1)

    with session_scope(db_url) as session:
        prompts = {p.text: p for p in session.exec(select(Prompt))}
    assert sorted(prompts) == ["four", "one", "three, with comma", "two"]
    assert prompts["three, with comma"].tags == ["b", "c"]
    assert prompts["one"].source == "p.jsonl"


def test_judgment_import_creates_rows_and_is_idempotent(db_url, tmp_path):
    path = write_jsonl(tmp_path / "j.jsonl", GOOD)
    report = import_judgments(path, url=db_url)
    assert (report.created, report.duplicates) == (4, 0)
    assert sorted(report.users_created) == ["ann1", "ann2", "ann3"]

    again = import_judgments(path, url=db_url)
    assert (again.created, again.duplicates) == (0, 4)

    with session_scope(db_url) as session:
        judgments = session.exec(select(Judgment).order_by(Judgment.id)).all()
        generations = {g.id: g.text for g in session.exec(select(Generation))}
        users = session.exec(select(User)).all()
    assert [j.kind for j in judgments] == ["pairwise", "rating", "ranking", "correction"]
    assert [generations[g] for g in judgments[0].generation_ids] == ["hi", "go away"]
    assert judgments[0].payload == {"choice": "a"}
    assert [generations[g] for g in judgments[2].generation_ids] == ["hello", "hi", "yo"]
    assert judgments[3].payload["corrected"] == "Hello there!"
    # "hi" for "Say hi" is one generation shared by the pairwise and the rating judgment
    assert judgments[0].generation_ids[0] == judgments[1].generation_ids[0]
    assert all(u.password_hash is None for u in users)


BAD_CASES = {
    "bad json on line 3": (
        GOOD[:2] + ['{"kind": "pairwise", "annotator": "x",'] + GOOD[2:],
        ":3: json: not valid JSON",
    ),
    "missing field": (GOOD[:1] + [{k: v for k, v in GOOD[1].items() if k != "response"}], ":2: response: missing"),
    "wrong type": (GOOD[:2] + [dict(GOOD[2], responses="hello")], ":3: responses: expected a list"),
    "score out of range": ([dict(GOOD[1], score=7)], ":1: score: 7 is out of range 1..5"),
    "score as text": ([dict(GOOD[1], score="5")], ":1: score: expected a whole number"),
    "unknown choice": ([dict(GOOD[0], choice="left")], ":1: choice: 'left' is not one of"),
    "typo in a field name": (
        [dict(GOOD[0], choise="a")],
        ":1: choise: unknown key for kind 'pairwise' (did you mean choice?)",
    ),
    "unknown kind": ([dict(GOOD[0], kind="vote")], ":1: kind: 'vote' is not one of"),
    "over 1 MiB": ([dict(GOOD[1], response="x" * (1 << 20 + 1))], ":1: response: 2097152 bytes is over"),
    "not an object": (GOOD[:3] + ["[1, 2]"], ":4: json: expected an object"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_malformed_judgment_import_changes_nothing(sqlite_url, tmp_path, case, capsys):
    records, expected = BAD_CASES[case]
    import_prompts(write_jsonl(tmp_path / "seed.jsonl", [{"prompt": "already here"}]), url=sqlite_url)
    dispose_engines()
    db_file = sqlite_path(sqlite_url)
    before = hashlib.sha256(db_file.read_bytes()).hexdigest()

    path = write_jsonl(tmp_path / "bad.jsonl", records)
    code = main(["judgments", "import", str(path), "--db", sqlite_url])
    dispose_engines()

    error = capsys.readouterr().err
    assert code == 2
    assert f"bad.jsonl{expected}" in error
    assert "nothing was imported" in error
    assert hashlib.sha256(db_file.read_bytes()).hexdigest() == before


def test_all_errors_are_reported_with_line_numbers(sqlite_url, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD[0], dict(GOOD[1], score=0), GOOD[2], dict(GOOD[0], a=3)])
    with pytest.raises(ImportFailed) as failure:
        import_judgments(path, url=sqlite_url)
    assert [str(e).split("bad.jsonl")[1] for e in failure.value.errors] == [
        ":2: score: 0 is out of range 1..5",
        ":4: a: expected text, got int",
    ]
    with session_scope(sqlite_url) as session:
        assert crud.count_judgments(session) == 0


def test_prompt_import_errors_name_line_and_field(sqlite_url, tmp_path):
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("prompt,tags\nfine,\n,empty\n", encoding="utf-8")
    with pytest.raises(ImportFailed, match=r"p\.csv:3: prompt: missing"):
        import_prompts(csv_file, url=sqlite_url)
    not_utf8 = tmp_path / "latin.jsonl"
    not_utf8.write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(ImportFailed, match=r"latin\.jsonl:2: encoding: not UTF-8"):
        import_prompts(not_utf8, url=sqlite_url)
    with session_scope(sqlite_url) as session:
        assert crud.count_prompts(session) == 0


def test_texts_up_to_one_mebibyte_are_accepted(sqlite_url, tmp_path):
    big = "é" * ((1 << 20) // 2)
    assert len(big.encode()) == 1 << 20
    report = import_prompts(write_jsonl(tmp_path / "big.jsonl", [{"prompt": big}]), url=sqlite_url)
    assert report.created == 1
    with pytest.raises(ImportFailed, match="over the 1048576-byte limit"):
        import_prompts(write_jsonl(tmp_path / "bigger.jsonl", [{"prompt": big + "x"}]), url=sqlite_url)


def test_csv_numbers_are_read_from_text_but_json_numbers_must_be_numbers(db_url, tmp_path):
    csv_file = tmp_path / "ratings.csv"
    csv_file.write_text(
        "kind,annotator,prompt,response,score,duration_ms\nrating,ann1,Say hi,hi,4,1200\n", encoding="utf-8"
    )
    report = import_judgments(csv_file, url=db_url)
    assert report.created == 1
    with session_scope(db_url) as session:
        judgment = session.exec(select(Judgment)).one()
    assert (judgment.payload, judgment.duration_ms) == ({"score": 4}, 1200)

    as_json = write_jsonl(tmp_path / "ratings.jsonl", [dict(GOOD[1], duration_ms="1200")])
    with pytest.raises(ImportFailed, match=r"ratings\.jsonl:1: duration_ms: expected a whole number from 0 to"):
        import_judgments(as_json, url=db_url)


def test_every_problem_of_a_record_and_of_the_file_is_reported_at_once(sqlite_url, tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            dict(GOOD[1], score=9, duration_ms=90_000_000, annotator=""),
            {"annotator": "ann1", "prompt": "p"},
            dict(GOOD[2], responses=["same", "same"]),
            dict(GOOD[0], b=GOOD[0]["a"]),
            dict(GOOD[3], note=[[[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]]]),
        ],
    )
    with pytest.raises(ImportFailed) as failure:
        import_judgments(path, url=sqlite_url)
    assert [str(e).split("bad.jsonl")[1] for e in failure.value.errors] == [
        ":1: score: 9 is out of range 1..5",
        ":1: annotator: must not be empty",
        ":1: duration_ms: 90000000 is out of range 0..86400000",
        ":2: kind: missing",
        ":3: responses: the same response appears twice",
        ":4: b: is the same text as a",
        ":5: note: nested more than 20 levels deep",
    ]


def test_a_line_nested_past_what_json_can_read_is_one_error_not_a_crash(sqlite_url, tmp_path):
    path = write_jsonl(tmp_path / "deep.jsonl", [GOOD[0], '{"kind": ' + "[" * 100_000 + "]" * 100_000 + "}"])
    with pytest.raises(ImportFailed, match=r"deep\.jsonl:2: json: (nested more than|not valid JSON)"):
        import_judgments(path, url=sqlite_url)


@pytest.mark.parametrize("quoted", [False, True])
def test_a_csv_field_over_the_size_limit_names_its_line_and_column(sqlite_url, tmp_path, capsys, quoted):
    import_prompts(write_jsonl(tmp_path / "seed.jsonl", [{"prompt": "already here"}]), url=sqlite_url)
    dispose_engines()
    db_file = sqlite_path(sqlite_url)
    before = hashlib.sha256(db_file.read_bytes()).hexdigest()
    huge = "x" * 20_000_000
    field = f'"{huge}"' if quoted else huge
    path = tmp_path / "big.csv"
    path.write_text(f"tags,prompt\na,{field}\nb,fine\n", encoding="utf-8")
    assert main(["prompts", "import", str(path), "--db", sqlite_url]) == 2
    error = capsys.readouterr().err
    assert f"{path}:2: prompt: field larger than field limit" in error
    assert len(error) < 1000
    dispose_engines()
    assert hashlib.sha256(db_file.read_bytes()).hexdigest() == before


def test_csv_problems_name_the_line_where_their_record_starts(sqlite_url, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('prompt,tags\n"two\nlines",a\n\n,"no\nprompt"\n', encoding="utf-8")
    with pytest.raises(ImportFailed) as failure:
        import_prompts(path, url=sqlite_url)
    assert [str(e).split("p.csv")[1] for e in failure.value.errors] == [":5: prompt: missing"]
    path.write_text('prompt,tags\n"two\nlines",a\n"' + "y" * 5_000_000 + '",b\n', encoding="utf-8")
    with pytest.raises(ImportFailed, match=r"p\.csv:4: prompt: field larger"):
        import_prompts(path, url=sqlite_url)
