"""Fuzzing every import path: a file with one bad record among good ones fails as a whole, naming the file
and line, and leaves every row of the store as it was.

Bad records are valid records with one hypothesis-chosen defect: a field of the wrong type, blank,
over the size limit, with a lone surrogate, an unknown or missing field, an out-of-range value,
a line that is not JSON or not an object, bytes that are not UTF-8. Whole files of random bytes
are fuzzed too. Cases run are counted and printed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.crud import MAX_TEXT_BYTES, StoreError
from storage.db import sqlite_path
from storage.gold import import_gold
from storage.imports import import_judgments, import_prompts
from storage.migrate import upgrade

HUGE = "x" * (MAX_TEXT_BYTES + 1)
PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "'; DROP TABLE prompt; --", "é ü 漢字 🙂"]
text = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(str.strip),
    st.sampled_from(PAYLOADS),
)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
not_text = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from(["", "   ", "\n\t", HUGE, "bad \ud800 text"]),
)
ran = {"cases": 0}


def not_in(valid):
    return json_values.filter(lambda v: not (isinstance(v, (str, int)) and not isinstance(v, bool) and v in valid))


@st.composite
def judgment_record(draw, kind=None, annotator=True):
    kind = kind or draw(st.sampled_from(["pairwise", "rating", "ranking", "correction"]))
    record = {"kind": kind, "prompt": draw(text)}
    if annotator:
        record["annotator"] = "ann" + str(draw(st.integers(0, 3)))
    if kind == "pairwise":
        body = draw(text)
        record.update(a=f"A: {body}", b=f"B: {body}", choice=draw(st.sampled_from(["a", "b", "tie", "both_bad"])))
    elif kind == "rating":
        record.update(response=draw(text), score=draw(st.integers(1, 5)))
    elif kind == "ranking":
        record["responses"] = [f"{i}: {t}" for i, t in enumerate(draw(st.lists(text, min_size=2, max_size=4)))]
    else:
        body = draw(text)
        record.update(response=body, corrected=f"{body} (fixed)")
    return record


DEFECTS = {  # field -> values that are never valid there
    "kind": not_in({"pairwise", "rating", "ranking", "correction"}),
    "choice": not_in({"a", "b", "tie", "both_bad"}),
    "score": not_in({1, 2, 3, 4, 5}),
    "responses": st.one_of(
        not_text,
        st.lists(text, max_size=1),
        text.map(lambda t: [t, t]),
        st.lists(st.integers(), min_size=2, max_size=3),
    ),
}


@st.composite
def defective_line(draw, record: dict, required: set[str]) -> bytes:
    """One line with one defect, as bytes."""
    how = draw(st.sampled_from(["wrong_value", "missing", "unknown_field", "not_json", "not_object", "not_utf8"]))
    record = dict(record)
    if how == "wrong_value":
        field = draw(st.sampled_from(sorted(record)))
        record[field] = draw(DEFECTS.get(field, not_text))
    elif how == "missing":
        del record[draw(st.sampled_from(sorted(required & set(record))))]
    elif how == "unknown_field":
        record[draw(st.sampled_from(["extra", "Prompt", "choise", "<b>"]))] = draw(json_values)
    elif how == "not_json":
        return draw(st.sampled_from([b"{", b"{'prompt': 'single quotes'}", b"prompt=hello", b"[1, 2", b"NaNx"]))
    elif how == "not_object":
        return json.dumps(draw(st.lists(json_values, max_size=3) | st.integers() | st.text(max_size=10))).encode()
    else:
        return json.dumps(record)[:-1].encode() + draw(st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80"])) + b"}"
    return json.dumps(record).encode()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{folder / 'store.db'}"
    upgrade(url)
    good = folder / "good.jsonl"
    good.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"kind": "pairwise", "annotator": "ann1", "prompt": "p", "a": "x", "b": "y", "choice": "a"},
                {"kind": "rating", "annotator": "ann2", "prompt": "p", "response": "x", "score": 4},
            ]
        )
    )
    import_judgments(good, url=url)
    return url, folder


def fingerprint(url: str) -> str:
    connection = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
    digest = hashlib.sha256()
    for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
        for row in connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
            digest.update(repr(row).encode())
    connection.close()
    return digest.hexdigest()


def refused(store, path, importer, *, line: int | None) -> None:
    url, _ = store
    before = fingerprint(url)
    with pytest.raises(StoreError) as caught:
        importer(path, url=url)
    message = str(caught.value)
    assert str(path) in message, message[:300]
    if line is not None:
        assert f"{path}:{line}:" in message or f"{path}:{line} " in message, message[:500]
    assert "Traceback" not in message
    assert fingerprint(url) == before, "a failed import changed the store"
    ran["cases"] += 1


def write_lines(path, lines: list[bytes]):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
IMPORTERS = {
    "judgments": (
        import_judgments,
        judgment_record(),
        {"kind", "annotator", "prompt", "a", "b", "choice", "response", "score", "responses", "corrected"},
    ),
    "gold": (
        import_gold,
        st.sampled_from(["pairwise", "rating"]).flatmap(lambda kind: judgment_record(kind=kind, annotator=False)),
        {"prompt", "a", "b", "choice", "response", "score"},
    ),
    "prompts": (import_prompts, st.fixed_dictionaries({"prompt": text}), {"prompt"}),
}


@FUZZ
@given(data=st.data(), what=st.sampled_from(sorted(IMPORTERS)))
def test_jsonl_with_one_bad_record_is_refused_whole(store, data, what):
    importer, records, required = IMPORTERS[what]
    good = data.draw(st.lists(records, max_size=4))
    bad = data.draw(records.flatmap(lambda record: defective_line(record, required)))
    position = data.draw(st.integers(0, len(good)))
    lines = [json.dumps(r).encode() for r in good]
    lines.insert(position, bad)
    refused(store, write_lines(store[1] / f"{what}.jsonl", lines), importer, line=position + 1)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), fmt=st.sampled_from(["csv", "parquet"]))
def test_prompt_csv_and_parquet_with_one_bad_row_are_refused_whole(store, data, fmt):
    good = data.draw(st.lists(text, max_size=4))
    defect = data.draw(
        st.sampled_from(
            ["blank", "huge", "unknown_column", "no_prompt_column"]
            + (["extra_values", "not_utf8"] if fmt == "csv" else ["null", "not_text"])
        )
    )
    position = data.draw(st.integers(0, len(good)))
    rows = [{"prompt": t} for t in good]
    bad = {"blank": {"prompt": "  "}, "huge": {"prompt": HUGE}, "null": {"prompt": None}}.get(defect, {"prompt": "ok"})
    rows.insert(position, bad)
    path = store[1] / f"prompts.{fmt}"
    line = None
    if fmt == "csv":
        columns = {"unknown_column": ["prompt", "color"], "no_prompt_column": ["text"]}.get(defect, ["prompt"])
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([row["prompt"]] * len(columns) + (["extra"] if defect == "extra_values" else []))
        if defect == "not_utf8":
            path.write_bytes(path.read_bytes().replace(b"ok", b"o\xff", 1))
        line = position + 2 if defect in ("blank", "huge", "extra_values", "not_utf8") else None
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if defect == "not_text":
            table = pa.table({"prompt": pa.array(list(range(len(rows))))})
        elif defect in ("unknown_column", "no_prompt_column"):
            name = "color" if defect == "unknown_column" else "text"
            table = pa.table(
                {
                    **({"prompt": [r["prompt"] for r in rows]} if defect == "unknown_column" else {}),
                    name: ["x"] * len(rows),
                }
            )
        else:
            table = pa.table({"prompt": pa.array([r["prompt"] for r in rows], type=pa.string())})
        pq.write_table(table, path)
    refused(store, path, import_prompts, line=line)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    blob=st.binary(min_size=1, max_size=300),
    suffix=st.sampled_from(["jsonl", "csv", "parquet"]),
    what=st.sampled_from(sorted(IMPORTERS)),
    encoding=st.sampled_from([None, "utf-16", "utf-32", "latin-1"]),
)
def test_random_bytes_and_wrong_encodings_are_refused(store, blob, suffix, what, encoding):
    importer = IMPORTERS[what][0]
    if encoding is not None:  # a sensible file, saved in the wrong encoding
        blob = json.dumps(
            {"kind": "rating", "annotator": "ännà", "prompt": "é", "response": "ü", "score": 3}, ensure_ascii=False
        ).encode(encoding)
        if encoding == "latin-1":
            suffix = "jsonl"
    path = store[1] / f"random.{suffix}"
    path.write_bytes(blob)
    url, _ = store
    before = fingerprint(url)
    try:
        importer(path, url=url)
    except StoreError as error:
        assert str(path) in str(error)
        ran["cases"] += 1
    else:  # random bytes can spell a valid file; then it must have imported something sane
        assert fingerprint(url) != before
        ran["cases"] += 1
        return
    assert fingerprint(url) == before


REGRESSIONS = [  # defects hypothesis found (or could): each crashed an import with a TypeError/UnicodeError
    ("judgments", {"kind": ["rating"], "annotator": "a", "prompt": "p", "response": "r", "score": 3}),
    ("judgments", {"kind": "pairwise", "annotator": "a", "prompt": "p", "a": "x", "b": "y", "choice": {"a": 1}}),
    ("judgments", {"kind": "rating", "annotator": "a", "prompt": "p \ud800", "response": "r", "score": 3}),
    ("judgments", {"kind": "ranking", "annotator": "a", "prompt": "p", "responses": ["x", "\udc00"]}),
    ("gold", {"kind": {"x": 1}, "prompt": "p", "response": "r", "score": 3}),
    ("gold", {"prompt": "p", "a": "x", "b": "y", "choice": ["a"]}),
    ("prompts", {"prompt": "x \ud800"}),
]


@pytest.mark.parametrize("what, record", REGRESSIONS)
def test_known_bad_records_are_refused_by_line(store, what, record):
    importer = IMPORTERS[what][0]
    path = write_lines(
        store[1] / f"regression-{what}.jsonl", [b'{"prompt": "fine", "a": "1", "b": "2"}', json.dumps(record).encode()]
    )
    refused(store, path, importer, line=2)


def test_report_cases_run():
    print(f"\nimport fuzz: {ran['cases']} bad files refused whole, naming file (and line), store unchanged")
    assert ran["cases"] >= 150
