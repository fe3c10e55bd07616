"""Label Studio exports as this project's judgments, so a team that moves here keeps its annotations.

Reads both of Label Studio's JSON exports: "JSON" (a list of tasks, each with `data` and
`annotations[].result[]`) and "JSON_MIN" (one flat object per annotation: the task's data fields,
each control's value under the control's name, `annotator`, `lead_time`). Results are recognised by
type: `pairwise` (selected left/right), `rating`, `ranker` and `textarea` (a correction when it is the
only answer, else the annotation's comment). The task fields that hold the prompt and the responses
are options, as are JSON_MIN's control names (inferred when left out: a "left"/"right" value is the
pairwise choice, a whole number the rating). Cancelled annotations carry no answer and are counted,
not stored (a skip here belongs to a queue item, which an imported task does not have).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from storage.records import JUDGMENT, JUDGMENT_ARMS

_MIN_METADATA = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "was_cancelled"}


@dataclass(frozen=True)
class Fields:
    prompt: str = "prompt"
    responses: tuple[str, ...] = ("answer1", "answer2")  # pairwise: left, right; rating/textarea use the first
    pairwise: str | None = None  # JSON_MIN control names; None: inferred from the value
    rating: str | None = None
    textarea: str | None = None
    ranker: str | None = None


@dataclass
class LabelStudioReport(ImportReport):
    cancelled: int = 0

    def summary(self) -> str:
        return super().summary() + f"; {self.cancelled} cancelled annotation(s) not imported"


def import_label_studio(
    path: str | Path, *, url: str | None = None, fields: Fields = Fields(), users: dict[str, str] | None = None
) -> LabelStudioReport:
    """All or nothing, like `import_judgments`; a re-imported export is skipped annotation by annotation.
    `users` maps Label Studio user ids (or e-mails) to annotator names; unmapped ids become `ls-user-ID`."""
    path = Path(path)
    tasks = _load(path)
    errors: list[RecordError] = []
    parsed: list[ParsedJudgment] = []
    cancelled = 0
    for where, record, renames, key in _annotations(path, tasks, fields, users or {}, errors):
        if record is None:
            cancelled += 1
            continue
        found: list[RecordError] = []
        judgment = checked(JUDGMENT, where, record, found, arms=JUDGMENT_ARMS)
        errors += [RecordError(e.where, renames.get(e.field, e.field), e.message) for e in found]
        if judgment is not None:
            parsed.append(ParsedJudgment(judgment, "label-studio:" + hashlib.sha256(key.encode()).hexdigest()[:48]))
    if not parsed and not errors and cancelled:
        errors.append(RecordError(str(path), "annotations", f"all {cancelled} annotation(s) are cancelled"))
    fail_if_bad(path, parsed, errors, first_field="annotations")
    stored = store_judgments(path, parsed, url=url)
    return LabelStudioReport(**vars(stored), cancelled=cancelled)


def read_users(path: str | Path) -> dict[str, str]:
    """A users file: JSON {"<id or e-mail>": "<annotator name>"}."""
    path = Path(path)
    try:
        users = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ImportFailed(path, [RecordError(str(path), "users", f"not a readable JSON object ({error})")]) from None
    if not isinstance(users, dict) or not all(isinstance(v, str) and v.strip() for v in users.values()):
        raise ImportFailed(path, [RecordError(str(path), "users", 'expected {"<id or e-mail>": "<name>", ...}')])
    return {str(k): v for k, v in users.items()}


def _load(path: Path) -> list[Any]:
    text = read_text(path)  # the other imports' reading: a missing file, a UTF-8 BOM, a bad byte's line
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportFailed(
            path,
            [RecordError(f"{path}:{error.lineno}", "json", f"not valid JSON ({error.msg} at column {error.colno})")],
        ) from None
    if not isinstance(tasks, list):
        raise ImportFailed(
            path, [RecordError(str(path), "json", "expected a list of tasks (Label Studio's JSON export)")]
        )
    return tasks


def _annotations(path: Path, tasks: list[Any], fields: Fields, users: dict[str, str], errors: list[RecordError]):
    """(where, record or None for a cancelled one, {our field: theirs}, identity) per annotation."""
    for number, task in enumerate(tasks, start=1):
        where = f"{path}: task {number}"
        if not isinstance(task, dict):
            errors.append(RecordError(where, "task", f"expected an object, got {type(task).__name__}"))
            continue
        if "annotations" in task or "data" in task:
            data = task.get("data")
            if not isinstance(data, dict):
                errors.append(RecordError(where, "data", "missing or not an object"))
                continue
            for index, annotation in enumerate(task.get("annotations") or []):
                at = f"{where} (id {task.get('id')}), annotation {index + 1}"
                if not isinstance(annotation, dict):
                    errors.append(RecordError(at, f"annotations[{index}]", "expected an object"))
                    continue
                identity = f"{task.get('id')}:{annotation.get('id', index)}"
                if annotation.get("was_cancelled"):
                    yield at, None, {}, identity
                    continue
                answers = _json_answers(annotation.get("result") or [], f"annotations[{index}].result")
                who = _user(annotation.get("completed_by"), users)
                converted = _record(data, answers, who, annotation.get("lead_time"), fields, at, errors)
                if converted is not None:
                    yield at, *converted, identity
        else:
            if task.get("was_cancelled"):
                yield f"{where} (id {task.get('id')})", None, {}, f"{task.get('id')}:{task.get('annotation_id')}"
                continue
            answers = _min_answers(task, fields)
            who = _user(task.get("annotator"), users)
            at = f"{where} (id {task.get('id')})"
            converted = _record(task, answers, who, task.get("lead_time"), fields, at, errors)
            if converted is not None:
                yield at, *converted, f"{task.get('id')}:{task.get('annotation_id')}:{task.get('annotator')}"


def _json_answers(results: list[Any], at: str) -> dict[str, tuple[Any, str]]:
    """Result type → (its value, where it sits in the file)."""
    keys = {"pairwise": "selected", "rating": "rating", "textarea": "text", "ranker": "ranker"}
    answers: dict[str, tuple[Any, str]] = {}
    for i, result in enumerate(results):
        kind = result.get("type") if isinstance(result, dict) else None
        if kind in keys and isinstance(result.get("value"), dict):
            answers[kind] = (result["value"].get(keys[kind]), f"{at}[{i}].value.{keys[kind]}")
    return answers


def _min_answers(task: dict[str, Any], fields: Fields) -> dict[str, tuple[Any, str]]:
    data_fields = {fields.prompt, *fields.responses} | _MIN_METADATA
    answers: dict[str, tuple[Any, str]] = {}
    for kind in ("pairwise", "rating", "textarea", "ranker"):
        name = getattr(fields, kind)
        if name is not None and name in task:
            answers[kind] = (task[name], name)
    for name, value in task.items():
        if name in data_fields or name in {n for _, n in answers.values()}:
            continue
        if "pairwise" not in answers and value in ("left", "right"):
            answers["pairwise"] = (value, name)
        elif "rating" not in answers and isinstance(value, int) and not isinstance(value, bool):
            answers["rating"] = (value, name)
    return answers


def _user(completed_by: Any, users: dict[str, str]) -> str:
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("email") or completed_by.get("id")
    key = str(completed_by)
    return users.get(key) or (key if "@" in key else f"ls-user-{key}")


def _record(
    data: dict[str, Any],
    answers: dict[str, tuple[Any, str]],
    who: str,
    lead_time: Any,
    fields: Fields,
    at: str,
    errors: list[RecordError],
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """One judgment record in this project's schema, and which Label Studio field each of its fields came from."""
    prompt, responses = data.get(fields.prompt), [data.get(name) for name in fields.responses]
    record: dict[str, Any] = {"annotator": who, "prompt": prompt}
    renames = {"prompt": fields.prompt, "annotator": "completed_by"}
    if isinstance(lead_time, int | float) and lead_time >= 0:
        record["duration_ms"] = round(lead_time * 1000)
        renames["duration_ms"] = "lead_time"
    text = answers.get("textarea")
    if text is not None and isinstance(text[0], list):
        text = ("\n".join(str(t) for t in text[0]), text[1])
    if "pairwise" in answers:
        selected, where = answers["pairwise"]
        choice = {"left": "a", "right": "b"}.get(selected)
        if choice is None:
            errors.append(RecordError(at, where, f"expected 'left' or 'right', got {selected!r}"))
            return None
        record.update(kind="pairwise", a=responses[0], b=responses[1] if len(responses) > 1 else None, choice=choice)
        renames.update(a=fields.responses[0], b=fields.responses[-1], choice=where)
    elif "ranker" in answers:
        ranked, where = answers["ranker"]
        items = data.get(fields.responses[0])
        order = next(iter(ranked.values()), None) if isinstance(ranked, dict) else ranked
        if not isinstance(items, list) or not isinstance(order, list):
            errors.append(RecordError(at, where, f"a ranking needs `{fields.responses[0]}` to be a list of items"))
            return None
        by_id = {
            str(i.get("id")): i.get("body") or i.get("text") or i.get("html") for i in items if isinstance(i, dict)
        }
        missing = [str(i) for i in order if str(i) not in by_id]
        if missing:
            errors.append(RecordError(at, where, f"ranks items that the task does not hold: {', '.join(missing)}"))
            return None
        record.update(kind="ranking", responses=[by_id[str(i)] for i in order])
        renames.update(responses=where)
    elif "rating" in answers:
        score, where = answers["rating"]
        record.update(kind="rating", response=responses[0], score=score)
        renames.update(response=fields.responses[0], score=where)
    elif text is not None:
        record.update(kind="correction", response=responses[0], corrected=text[0])
        renames.update(response=fields.responses[0], corrected=text[1])
        text = None
    else:
        errors.append(RecordError(at, "result", "no pairwise, rating, ranker or textarea answer"))
        return None
    if text is not None and text[0].strip():
        record["comment"] = text[0]
        renames["comment"] = text[1]
    return record, renames
