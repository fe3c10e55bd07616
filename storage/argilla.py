"""Argilla 2.x exports as this project's judgments, so a team that annotated in Argilla keeps its work.

An export is a folder with `.argilla/settings.json` (the dataset's fields and questions) and its records in
one of the forms the `argilla` SDK writes: `records.json` (`Dataset.to_disk`: one nested object per record,
`responses` keyed by question, each `{value, user_id[, status]}`), parquet files (`Dataset.to_hub`, as the
Hub snapshot holds them under `data/`) or a `datasets` folder (`records.to_datasets().save_to_disk`). The
last two are flat: a column per field and, per question, `<question>.responses`, `.responses.users` and
`.responses.status`, one list entry per user.

A user's answers to one record become judgments the way Label Studio's annotations do: a `label_selection`
question whose labels name the two response fields is the preference (`tie` and `both_bad` labels kept);
else a `ranking` (field names, best first); else each `rating` (of the response field its name contains,
else the first); a `text` answer is a correction when it is the only answer, else the comment. Which
fields hold the prompt and the responses comes from flags or, when unambiguous, from the settings (one
text field named like a prompt, the other text fields the responses). Discarded responses are counted
like Label Studio's cancelled annotations, drafts are counted and left for later; neither is stored.
Other question types (multi-label, span) are not read.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storage.crud import StoreError
from storage.imports import (
    ImportFailed,
    ImportReport,
    ParsedJudgment,
    RecordError,
    checked,
    fail_if_bad,
    read_text,
    store_judgments,
)
from storage.records import JUDGMENT, JUDGMENT_ARMS, flatten_messages

SETTINGS = Path(".argilla") / "settings.json"
DATASET = Path(".argilla") / "dataset.json"
RECORDS = "records.json"
PROMPT_NAMES = ("prompt", "instruction", "question", "query", "input")
_STATUSES = ("submitted", "draft", "discarded")
_NEITHER = {"tie": "tie", "equal": "tie", "draw": "tie", "bothbad": "both_bad", "neither": "both_bad"}


@dataclass(frozen=True)
class Fields:
    """The record fields holding the prompt and the responses; None: inferred from the settings."""

    prompt: str | None = None
    responses: tuple[str, ...] | None = None


@dataclass
class ArgillaReport(ImportReport):
    discarded: int = 0
    drafts: int = 0

    def summary(self) -> str:
        return super().summary() + f"; {self.discarded} discarded and {self.drafts} draft response(s) not imported"


@dataclass(frozen=True)
class _Answer:
    value: Any
    status: Any
    column: str  # where the value sits, e.g. `quality.responses[1]` or `responses.quality[1].value`
    status_column: str


@dataclass
class _Row:
    where: str
    identity: str
    fields: dict[str, Any]
    field_prefix: str  # "fields." in records.json, "" in the flat forms
    answers: dict[str, dict[str, _Answer]] = field(default_factory=lambda: defaultdict(dict))  # user → question


@dataclass(frozen=True)
class _Layout:
    """What the dataset's settings (and the flags) say each field and question is."""

    prompt: str
    responses: tuple[str, ...]
    preference: str | None
    choices: dict[str, str]  # the preference question's label → a, b, tie or both_bad
    ranking: str | None
    rated: dict[str, str]  # rating question → the response field it rates
    texts: tuple[str, ...]


def import_argilla(
    path: str | Path, *, url: str | None = None, fields: Fields = Fields(), users: dict[str, str] | None = None
) -> ArgillaReport:
    """All or nothing, like `import_judgments`; a re-imported export is skipped response by response.
    `users` maps Argilla user ids (UUIDs) to annotator names; unmapped ids become `argilla-user-<8 chars>`."""
    path = Path(path)
    settings = _settings(path)
    layout = _layout(path / SETTINGS, settings, fields)
    dataset = _dataset_id(path)
    errors: list[RecordError] = []
    parsed: list[ParsedJudgment] = []
    counts = {"discarded": 0, "draft": 0}
    for row in _rows(path, {str(q.get("name")) for q in settings["questions"]}, errors):
        for user, answers in row.answers.items():
            status = _status(row.where, answers, errors)
            if status is None:
                continue
            if status != "submitted":
                counts[status] += 1
                continue
            who = (users or {}).get(user) or f"argilla-user-{user[:8]}"
            for question, record, renames in _judgments(row, answers, who, layout, errors):
                found: list[RecordError] = []
                judgment = checked(JUDGMENT, row.where, record, found, arms=JUDGMENT_ARMS)
                errors += [RecordError(e.where, renames.get(e.field, e.field), e.message) for e in found]
                if judgment is not None:
                    key = f"{dataset}:{row.identity}:{user}:{question}"
                    parsed.append(ParsedJudgment(judgment, "argilla:" + hashlib.sha256(key.encode()).hexdigest()[:48]))
    skipped = counts["discarded"] + counts["draft"]
    if not parsed and not errors and skipped:
        errors.append(RecordError(str(path), "responses", f"all {skipped} response(s) are discarded or drafts"))
    fail_if_bad(path, parsed, errors, first_field="responses")
    stored = store_judgments(path, parsed, url=url)
    return ArgillaReport(**vars(stored), discarded=counts["discarded"], drafts=counts["draft"])


# --- the export's settings -------------------------------------------------------------


def _settings(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise StoreError(f"{path}: no such folder")
    file = path / SETTINGS
    if not path.is_dir() or not file.is_file():
        raise ImportFailed(path, [RecordError(str(path), "folder", f"not an Argilla export: no {SETTINGS}")])
    settings = _json(file)
    if not isinstance(settings, dict):
        raise ImportFailed(file, [RecordError(str(file), "json", "expected an object")])
    problems = [
        RecordError(str(file), key, "expected a list of objects")
        for key in ("fields", "questions")
        if not isinstance(settings.get(key), list) or not all(isinstance(item, dict) for item in settings[key])
    ]
    if problems:
        raise ImportFailed(file, problems)
    return settings


def _json(file: Path) -> Any:
    try:
        return json.loads(read_text(file))
    except json.JSONDecodeError as error:
        raise ImportFailed(
            file,
            [RecordError(f"{file}:{error.lineno}", "json", f"not valid JSON ({error.msg} at column {error.colno})")],
        ) from None


def _kind(item: dict[str, Any]) -> Any:
    """A field's or question's type: in `settings.type`, and at the top too in some SDK versions."""
    inner = item.get("settings")
    return (inner.get("type") if isinstance(inner, dict) else None) or item.get("type")


def _layout(file: Path, settings: dict[str, Any], fields: Fields) -> _Layout:
    """Which field is the prompt, which the responses, and which question gives which judgment."""
    text_fields = {
        str(f.get("name")): f for f in settings["fields"] if _kind(f) in ("text", "chat", None) and f.get("name")
    }
    problems: list[RecordError] = []
    named = [name for name in (fields.prompt, *(fields.responses or ())) if name is not None]
    for name in named:
        if name not in text_fields:
            problems.append(
                RecordError(str(file), "fields", f"{name!r} is not one of its text fields: {_list(text_fields)}")
            )
    prompt = fields.prompt
    if prompt is None:
        candidates = [n for n in text_fields if n not in (fields.responses or ()) and _looks_like_prompt(n)]
        if len(candidates) == 1:
            prompt = candidates[0]
        else:
            found = f"{_list(candidates)} all look like one" if candidates else "none is named like one"
            problems.append(
                RecordError(str(file), "fields", f"which field is the prompt? {found}; give --prompt-field")
            )
    responses = fields.responses or tuple(n for n in text_fields if n != prompt)
    if not responses:
        problems.append(
            RecordError(str(file), "fields", "no text field left for the responses; give --response-fields")
        )
    if problems:
        raise ImportFailed(file, problems)
    assert prompt is not None
    questions = settings["questions"]
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for question in questions:
        by_kind[str(_kind(question))].append(question)
    preference, choices = None, {}
    for question in by_kind["label_selection"]:
        mapped = _choices(question, responses, text_fields)
        if {"a", "b"} & set(mapped.values()):
            preference, choices = str(question.get("name")), mapped
            break
    if preference is not None and len(responses) != 2:
        raise ImportFailed(
            file,
            [
                RecordError(
                    str(file),
                    f"questions.{preference}",
                    f"a preference needs two response fields, not {_list(responses)}",
                )
            ],
        )
    ratings = [str(q.get("name")) for q in by_kind["rating"]]
    rankings = [str(q.get("name")) for q in by_kind["ranking"]]
    texts = tuple(str(q.get("name")) for q in by_kind["text"])
    if preference is None and not rankings and not ratings and not texts:
        raise ImportFailed(
            file,
            [
                RecordError(
                    str(file),
                    "questions",
                    "no rating, ranking or text question, nor a label_selection whose labels name the response fields",
                )
            ],
        )
    rated = {q: max((r for r in responses if _names_field(q, r)), key=len, default=responses[0]) for q in ratings}
    return _Layout(prompt, responses, preference, choices, rankings[0] if rankings else None, rated, texts)


def _names_field(question: str, name: str) -> bool:
    """`rating_response2` names `response2` (not `response20`, and `rating` does not name a field `a`)."""
    return re.search(rf"(?<![a-z0-9]){re.escape(name.lower())}(?![a-z0-9])", question.lower()) is not None


def _looks_like_prompt(name: str) -> bool:
    return any(word in name.lower() for word in PROMPT_NAMES)


def _choices(question: dict[str, Any], responses: tuple[str, ...], text_fields: dict[str, Any]) -> dict[str, str]:
    """A label_selection question's labels that name a response field (by name or title), or a tie."""
    sides = {}
    for side, name in zip(("a", "b"), responses, strict=False):
        for alias in (name, text_fields[name].get("title")):
            if isinstance(alias, str):
                sides[_norm(alias)] = side
    options = (question.get("settings") or {}).get("options") or []
    mapped = {}
    for option in options if isinstance(options, list) else []:
        if not isinstance(option, dict) or not isinstance(option.get("value"), str):
            continue
        for alias in (option["value"], option.get("text")):
            if isinstance(alias, str) and (_norm(alias) in sides or _norm(alias) in _NEITHER):
                mapped[option["value"]] = sides.get(_norm(alias)) or _NEITHER[_norm(alias)]
                break
    return mapped


def _norm(text: str) -> str:
    """A label or field name as compared: "Response 1", "response_1" and "response1" are one."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _list(names) -> str:
    return ", ".join(names) or "(none)"


def _dataset_id(path: Path) -> str:
    """The dataset's id, so that two datasets' records with the same ids stay apart."""
    file = path / DATASET
    dataset = _json(file) if file.is_file() else {}
    return str(dataset.get("id") or dataset.get("name") or "") if isinstance(dataset, dict) else ""


# --- the export's records ---------------------------------------------------------------


def _rows(path: Path, questions: set[str], errors: list[RecordError]) -> Iterator[_Row]:
    if (path / RECORDS).is_file():
        yield from _disk_rows(path / RECORDS, questions, errors)
    elif (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        from datasets import Dataset, DatasetDict, load_from_disk

        try:
            loaded = load_from_disk(str(path))
        except Exception as error:  # datasets raises several types for a damaged folder
            raise ImportFailed(path, [RecordError(str(path), "datasets", f"cannot be read ({error})")]) from None
        splits = loaded.items() if isinstance(loaded, DatasetDict) else [("", loaded)]
        for split, dataset in splits:
            assert isinstance(dataset, Dataset)
            table = dataset.with_format("arrow")[:]
            yield from _flat_rows(f"{path}{f' [{split}]' if split else ''}", table.to_pylist(), questions, errors)
    else:
        files = sorted(f for f in path.rglob("*.parquet") if ".argilla" not in f.relative_to(path).parts)
        if not files:
            raise ImportFailed(
                path,
                [
                    RecordError(
                        str(path),
                        "records",
                        f"no {RECORDS} (Dataset.to_disk), parquet files (Dataset.to_hub) "
                        "or datasets folder (save_to_disk)",
                    )
                ],
            )
        import pyarrow.parquet as pq

        for file in files:
            try:
                table = pq.read_table(file)
            except Exception as error:  # pyarrow raises several types for a damaged file
                raise ImportFailed(file, [RecordError(str(file), "parquet", f"cannot be read ({error})")]) from None
            yield from _flat_rows(str(file), table.to_pylist(), questions, errors)


def _identity(record: dict[str, Any]) -> str | None:
    ident = record.get("id") if record.get("id") is not None else record.get("_server_id")
    return None if ident is None else str(ident)


def _disk_rows(file: Path, questions: set[str], errors: list[RecordError]) -> Iterator[_Row]:
    """`Dataset.to_disk`'s records.json: [{id, fields, responses: {question: [{value, user_id, status}]}, ...}]."""
    records = _json(file)
    if not isinstance(records, list):
        raise ImportFailed(file, [RecordError(str(file), "json", "expected a list of records")])
    for number, record in enumerate(records, start=1):
        where = f"{file}: record {number}"
        if not isinstance(record, dict) or not isinstance(record.get("fields"), dict):
            errors.append(RecordError(where, "fields", "missing or not an object"))
            continue
        identity = _identity(record)
        if identity is None:
            errors.append(RecordError(where, "id", "missing (and no _server_id)"))
            continue
        row = _Row(f"{where} (id {identity})", identity, record["fields"], "fields.")
        responses = record.get("responses") or {}
        if not isinstance(responses, dict):
            errors.append(RecordError(row.where, "responses", "expected an object keyed by question"))
            continue
        for question, items in responses.items():
            if question not in questions:
                continue
            if not isinstance(items, list):
                errors.append(RecordError(row.where, f"responses.{question}", "expected a list of responses"))
                continue
            for index, item in enumerate(items):
                at = f"responses.{question}[{index}]"
                if not isinstance(item, dict) or not item.get("user_id"):
                    errors.append(RecordError(row.where, f"{at}.user_id", "missing"))
                    continue
                answer = _Answer(item.get("value"), item.get("status"), f"{at}.value", f"{at}.status")
                row.answers[str(item["user_id"])][question] = answer
        yield row


def _flat_rows(where: str, records: list[dict[str, Any]], questions: set[str], errors: list[RecordError]):
    """`records.to_datasets()`'s rows: fields as columns, `<question>.responses[.users|.status]` lists."""
    for number, record in enumerate(records, start=1):
        at = f"{where}: row {number}"
        identity = _identity(record)
        if identity is None:
            errors.append(RecordError(at, "id", "missing (and no _server_id)"))
            continue
        row = _Row(f"{at} (id {identity})", identity, record, "")
        for question in sorted(questions):
            column = f"{question}.responses"
            values = record.get(column)
            if values is None:
                continue
            users = record.get(f"{column}.users")
            statuses = record.get(f"{column}.status")
            if not isinstance(values, list) or not isinstance(users, list) or len(users) != len(values):
                errors.append(RecordError(row.where, f"{column}.users", f"expected one user id per {column} entry"))
                continue
            if not isinstance(statuses, list) or len(statuses) != len(values):
                statuses = [None] * len(values)  # older exports carry no status column
            for index, (value, user, status) in enumerate(zip(values, users, statuses, strict=True)):
                if not user:
                    errors.append(RecordError(row.where, f"{column}.users[{index}]", "missing"))
                    continue
                answer = _Answer(value, status, f"{column}[{index}]", f"{column}.status[{index}]")
                row.answers[str(user)][question] = answer
        yield row


# --- one user's answers to one record → judgments --------------------------------------


def _status(where: str, answers: dict[str, _Answer], errors: list[RecordError]) -> str | None:
    """One user's response status for a record (Argilla keeps one per user); no status: an older SDK's
    export of submitted responses. None when a status is not Argilla's."""
    for answer in answers.values():
        if answer.status is not None and answer.status not in _STATUSES:
            errors.append(
                RecordError(where, answer.status_column, f"{answer.status!r} is not one of {', '.join(_STATUSES)}")
            )
            return None
    statuses = {answer.status or "submitted" for answer in answers.values()}
    return "discarded" if "discarded" in statuses else "draft" if "draft" in statuses else "submitted"


def _text(value: Any) -> Any:
    """A chat field's messages as one text (as a multi-turn prompt's text is); anything else as given."""
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m and "content" in m for m in value):
        return flatten_messages([{"role": str(m["role"]), "content": str(m["content"])} for m in value])
    return value


def _judgments(row: _Row, answers: dict[str, _Answer], who: str, layout: _Layout, errors: list[RecordError]):
    """(question, record in this project's schema, {our field: the export's column}) per judgment."""
    field_column = {name: row.field_prefix + name for name in (layout.prompt, *layout.responses)}
    base = {"annotator": who, "prompt": _text(row.fields.get(layout.prompt))}
    renames = {"prompt": field_column[layout.prompt], "annotator": "user_id"}
    text_question = next((q for q in layout.texts if q in answers), None)
    text = answers[text_question] if text_question is not None else None
    made: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    if layout.preference in answers:
        answer = answers[layout.preference]
        choice = layout.choices.get(answer.value) if isinstance(answer.value, str) else None
        if choice is None:
            errors.append(
                RecordError(row.where, answer.column, f"expected one of {_list(layout.choices)}, got {answer.value!r}")
            )
            return []
        a, b = layout.responses
        record = {**base, "kind": "pairwise", "a": _text(row.fields.get(a)), "b": _text(row.fields.get(b))}
        made.append(
            (
                layout.preference,
                {**record, "choice": choice},
                {"a": field_column[a], "b": field_column[b], "choice": answer.column},
            )
        )
    elif layout.ranking in answers:
        answer = answers[layout.ranking]
        order = answer.value
        if isinstance(order, list) and all(isinstance(r, dict) for r in order):  # the API's [{value, rank}]
            order = [r.get("value") for r in sorted(order, key=lambda r: r.get("rank") or 0)]
        if not isinstance(order, list) or not all(isinstance(name, str) for name in order):
            errors.append(RecordError(row.where, answer.column, "expected a list of field names, best first"))
            return []
        unknown = [name for name in order if name not in row.fields]
        if unknown:
            errors.append(
                RecordError(row.where, answer.column, f"ranks fields the record does not hold: {_list(unknown)}")
            )
            return []
        ranked = [_text(row.fields[name]) for name in order]
        made.append((layout.ranking, {**base, "kind": "ranking", "responses": ranked}, {"responses": answer.column}))
    elif any(q in answers for q in layout.rated):
        for question, target in layout.rated.items():
            if question in answers:
                answer = answers[question]
                record = {**base, "kind": "rating", "response": _text(row.fields.get(target)), "score": answer.value}
                made.append((question, record, {"response": field_column[target], "score": answer.column}))
    elif text_question is not None and text is not None:
        first = layout.responses[0]
        record = {**base, "kind": "correction", "response": _text(row.fields.get(first)), "corrected": text.value}
        return [(text_question, record, {**renames, "response": field_column[first], "corrected": text.column})]
    for _question, record, columns in made:
        columns.update(renames)
        if text is not None and isinstance(text.value, str) and text.value.strip():
            record["comment"] = text.value
            columns["comment"] = text.column
    return made
