"""All-or-nothing file imports of prompts and judgments.

Every record is read and checked before the store is touched; one bad record
fails the whole import with messages that name the file, line and field, and
the store is left exactly as it was. Valid files are written in one transaction.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import insert, select
from sqlmodel import Session, col

from storage.crud import MAX_TEXT_BYTES, StoreError, content_hash, insert_or_ignore
from storage.db import session_scope
from storage.models import Generation, Judgment, Prompt, User, utcnow
from storage.records import (
    JUDGMENT,
    JUDGMENT_ARMS,
    PROMPT,
    JudgmentRecord,
    PromptRecord,
    judgment_payload,
    validate_record,
)
from storage.validation import MAX_DEPTH

MAX_ERRORS_SHOWN = 20
csv.field_size_limit(max(csv.field_size_limit(), 4 * MAX_TEXT_BYTES))  # let the 1 MiB check name the field
_CHUNK = 500


@dataclass(frozen=True)
class RecordError:
    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.message}"


class ImportFailed(StoreError):
    """The file had problems; nothing was imported."""

    def __init__(self, path: Path, errors: list[RecordError]):
        self.path = path
        self.errors = errors
        shown = "\n".join(f"  {error}" for error in errors[:MAX_ERRORS_SHOWN])
        more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        super().__init__(f"{path}: {len(errors)} problem(s), nothing was imported:\n{shown}{more}")


@dataclass
class ImportReport:
    path: Path
    what: str
    records: int = 0
    created: int = 0
    duplicates: int = 0
    users_created: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.path}: {self.records} {self.what} read, {self.created} imported, "
            f"{self.duplicates} duplicate(s) skipped"
        )
        if self.users_created:
            text += f"; new annotators (no login): {', '.join(self.users_created)}"
        return text


# --- reading files ------------------------------------------------------------


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{path}: no such file") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ImportFailed(
            path, [RecordError(f"{path}:{line}", "encoding", f"not UTF-8 (byte 0x{data[error.start]:02x})")]
        ) from None


def read_records(path: Path) -> Iterator[tuple[str, dict[str, Any] | RecordError]]:
    """(location, record or error) for each record of a JSONL, CSV or parquet file."""
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".json", ".ndjson"}:
        for number, line in enumerate(read_text(path).splitlines(), start=1):
            where = f"{path}:{number}"
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                yield where, RecordError(where, "json", f"not valid JSON ({error.msg} at column {error.colno})")
                continue
            except RecursionError:
                yield where, RecordError(where, "json", f"nested more than {MAX_DEPTH} levels deep")
                continue
            if not isinstance(record, dict):
                yield where, RecordError(where, "json", f"expected an object, got {type(record).__name__}")
                continue
            if "\\ud" in line.lower() and _has_lone_surrogate(record):
                yield (
                    where,
                    RecordError(where, "json", "a \\udXXX escape that is not part of a pair: not valid Unicode"),
                )
                continue
            yield where, record
    elif suffix in {".csv", ".tsv"}:
        delimiter = "\t" if suffix == ".tsv" else ","
        lines = _Lines(read_text(path))
        reader = csv.DictReader(lines, delimiter=delimiter)
        try:
            reader.fieldnames  # noqa: B018  (reads the header, so the first record's start is its own line)
            lines.next_record()
            for record in reader:
                where = f"{path}:{lines.start}"
                lines.next_record()
                if None in record:
                    yield where, RecordError(where, "csv", "more values than header columns")
                    continue
                yield where, {key: value for key, value in record.items() if value not in (None, "")}
        except csv.Error as error:
            where = f"{path}:{lines.start or lines.number}"
            column = _oversized_column(lines.record, delimiter, reader)
            yield where, RecordError(where, column or "csv", str(error))
    elif suffix in {".parquet", ".pq"}:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except FileNotFoundError:
            raise StoreError(f"{path}: no such file") from None
        except Exception as error:  # pyarrow raises several types for a damaged file
            raise ImportFailed(path, [RecordError(str(path), "parquet", f"cannot be read ({error})")]) from None
        for number, record in enumerate(table.to_pylist(), start=1):
            yield f"{path}:row {number}", {key: value for key, value in record.items() if value is not None}
    else:
        raise StoreError(f"{path}: unknown file type {suffix!r}; use .jsonl, .csv or .parquet")


class _Lines:
    """The physical lines of a CSV text for `csv.reader`, remembering where the record being read starts."""

    def __init__(self, text: str):
        self._lines = io.StringIO(text, newline="")
        self.number = 0
        self.start: int | None = None
        self.record: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.number += 1
        if self.start is None and line.strip("\r\n"):
            self.start, self.record = self.number, []
        if self.start is not None:
            self.record.append(line)
        return line

    def next_record(self) -> None:
        self.start, self.record = None, []


def _oversized_column(lines: list[str], delimiter: str, reader: csv.DictReader) -> str | None:
    """The header name of the first field in the record's raw text longer than csv's field limit, if any."""
    text = "".join(lines).rstrip("\r\n")
    limit = csv.field_size_limit()
    quoted, begin, index = False, 0, 0
    for mark in re.finditer(f'["{re.escape(delimiter)}]', text):
        if mark.group() == '"':
            quoted = not quoted
            continue
        if quoted:
            continue
        if mark.start() - begin > limit:
            break
        begin, index = mark.end(), index + 1
    else:
        if len(text) - begin <= limit:
            return None
    names = reader.fieldnames or []
    return names[index] if index < len(names) else None


def _has_lone_surrogate(record: dict[str, Any]) -> bool:
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_records(path: Path, parse) -> tuple[list, list[RecordError]]:
    """Every record of `path` through `parse(where, record, errors, lax)` (None: rejected), and all errors
    found; `lax` for CSV, whose values are all text (a score of "3" is 3 there, not in JSON)."""
    errors: list[RecordError] = []
    parsed: list = []
    lax = path.suffix.lower() in {".csv", ".tsv"}
    for where, record in read_records(path):
        if isinstance(record, RecordError):
            errors.append(record)
            continue
        item = parse(where, record, errors, lax)
        if item is not None:
            parsed.append(item)
    return parsed, errors


def checked(adapter: TypeAdapter, where: str, record: dict[str, Any], errors: list[RecordError], **options: Any) -> Any:
    """The record validated by `adapter` (see storage.records.validate_record), or None with its problems added."""
    parsed, found = validate_record(adapter, record, **options)
    errors.extend(RecordError(where, key, message) for key, message in found)
    return parsed


def fail_if_bad(path: Path, parsed: list, errors: list[RecordError], *, first_field: str) -> None:
    """Raise ImportFailed when any record was bad, or when there was none at all (naming `first_field`)."""
    if errors:
        raise ImportFailed(path, errors)
    if not parsed:
        raise ImportFailed(path, [RecordError(str(path), first_field, "the file holds no records")])


# --- prompts --------------------------------------------------------------------


def import_prompts(path: str | Path, *, url: str | None = None, source: str | None = None) -> ImportReport:
    path = Path(path)

    def parse(where: str, record: dict[str, Any], errors: list[RecordError], lax: bool) -> dict[str, Any] | None:
        parsed = checked(PROMPT, where, record, errors, lax=lax, model=PromptRecord)
        if parsed is None:
            return None
        return {
            "text": parsed.text,
            "messages": parsed.turns,
            "source": parsed.source or source or path.name,
            "tags": parsed.tags,
        }

    rows, errors = parse_records(path, parse)
    fail_if_bad(path, rows, errors, first_field="prompt")

    report = ImportReport(path=path, what="prompts", records=len(rows))
    with session_scope(url) as session:
        ids = _ensure_prompts(session, rows)
        report.created = ids.created
        report.duplicates = len(rows) - ids.created
    return report


@dataclass
class _PromptIds:
    by_hash: dict[str, int]
    created: int


def _ensure_prompts(session: Session, rows: list[dict[str, Any]]) -> _PromptIds:
    """Ids for each prompt text, inserting the ones the store does not have yet."""
    wanted: dict[str, dict[str, Any]] = {}
    for row in rows:
        wanted.setdefault(content_hash(row["text"]), row)
    by_hash = _existing(session, Prompt.content_hash, Prompt.id, list(wanted))
    missing = [digest for digest in wanted if digest not in by_hash]
    now = utcnow()
    for start in range(0, len(missing), _CHUNK):
        chunk = missing[start : start + _CHUNK]
        session.execute(
            insert(Prompt),
            [
                {
                    "text": wanted[d]["text"],
                    "content_hash": d,
                    "source": wanted[d].get("source"),
                    "tags": wanted[d].get("tags", []),
                    "messages": wanted[d].get("messages"),
                    "created_at": now,
                }
                for d in chunk
            ],
        )
    by_hash.update(_existing(session, Prompt.content_hash, Prompt.id, missing))
    return _PromptIds(by_hash=by_hash, created=len(missing))


def _existing(session: Session, key_column, id_column, keys: list, *extra_filters) -> dict:
    found: dict = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        query = select(key_column, id_column).where(key_column.in_(chunk), *extra_filters)
        found.update(dict(session.execute(query).all()))
    return found


# --- judgments -----------------------------------------------------------------------


def _parse_judgment(where: str, record: dict[str, Any], errors: list[RecordError], lax: bool) -> ParsedJudgment | None:
    parsed = checked(JUDGMENT, where, record, errors, lax=lax, arms=JUDGMENT_ARMS)
    if parsed is None:
        return None
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
    return ParsedJudgment(parsed, "import:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:48])


@dataclass(frozen=True)
class ParsedJudgment:
    record: JudgmentRecord
    client_key: str


def import_judgments(path: str | Path, *, url: str | None = None) -> ImportReport:
    """Import judgments (schema in DESIGN.md); a repeated line or re-imported file is skipped, not doubled."""
    path = Path(path)
    parsed, errors = parse_records(path, _parse_judgment)
    fail_if_bad(path, parsed, errors, first_field="kind")
    return store_judgments(path, parsed, url=url)


def store_judgments(path: Path, parsed: list[ParsedJudgment], *, url: str | None = None) -> ImportReport:
    """Checked judgments from `path` into the store in one transaction; a `client_key` already stored is skipped."""
    report = ImportReport(path=path, what="judgments", records=len(parsed))
    with session_scope(url) as session:
        records = [j.record for j in parsed]
        users = _ensure_annotators(session, {r.annotator for r in records}, report)
        prompt_ids = _ensure_prompts(session, [{"text": r.prompt, "source": path.name} for r in records]).by_hash
        generation_ids = _ensure_generations(session, records, prompt_ids)
        known = set(_existing(session, Judgment.client_key, Judgment.id, sorted({j.client_key for j in parsed})))
        now = utcnow()
        rows = []
        for judgment in parsed:
            if judgment.client_key in known:
                report.duplicates += 1
                continue
            known.add(judgment.client_key)
            record = judgment.record
            prompt_id = prompt_ids[content_hash(record.prompt)]
            ids = [generation_ids[(prompt_id, content_hash(text))] for text in record.responses]
            rows.append(
                {
                    "kind": record.kind,
                    "user_id": users[record.annotator],
                    "prompt_id": prompt_id,
                    "item_id": None,
                    "generation_ids": ids,
                    "payload": judgment_payload(record),
                    "shown_order": None,
                    "duration_ms": record.duration_ms,
                    "client_key": judgment.client_key,
                    "source": f"import:{path.name}"[:512],
                    "created_at": now,
                }
            )
        for start in range(0, len(rows), _CHUNK * 4):
            report.created += len(
                insert_or_ignore(session, Judgment, rows[start : start + _CHUNK * 4], unique=["client_key"])
            )
        report.duplicates += len(rows) - report.created
    return report


def _ensure_annotators(session: Session, names: set[str], report: ImportReport) -> dict[str, int]:
    users = _existing(session, User.username, User.id, sorted(names))
    for name in sorted(names - set(users)):
        user = User(username=name)
        session.add(user)
        session.flush()
        users[name] = user.id
        report.users_created.append(name)
    return users


def _ensure_generations(session: Session, records: list, prompt_ids: dict[str, int]) -> dict[tuple[int, str], int]:
    """Imported responses (each record's `prompt` and `responses`) become version-less Generations,
    one per (prompt, text)."""
    wanted: dict[tuple[int, str], str] = {}
    for record in records:
        prompt_id = prompt_ids[content_hash(record.prompt)]
        for text in record.responses:
            wanted.setdefault((prompt_id, content_hash(text)), text)
    found = _generation_ids(session, {prompt_id for prompt_id, _ in wanted})
    missing = [key for key in wanted if key not in found]
    now = utcnow()
    for start in range(0, len(missing), _CHUNK * 4):
        session.execute(
            insert(Generation),
            [
                {
                    "prompt_id": p,
                    "model_version_id": None,
                    "text": wanted[(p, h)],
                    "text_hash": h,
                    "params": {"source": "import"},
                    "created_at": now,
                }
                for p, h in missing[start : start + _CHUNK * 4]
            ],
        )
    if missing:
        found = _generation_ids(session, {prompt_id for prompt_id, _ in wanted})
    return found


def _generation_ids(session: Session, prompt_ids: set[int]) -> dict[tuple[int, str], int]:
    found: dict[tuple[int, str], int] = {}
    ordered = sorted(prompt_ids)
    for start in range(0, len(ordered), _CHUNK):
        query = select(col(Generation.prompt_id), col(Generation.text_hash), col(Generation.id)).where(
            col(Generation.prompt_id).in_(ordered[start : start + _CHUNK]), col(Generation.model_version_id).is_(None)
        )
        for prompt_id, text_hash, generation_id in session.execute(query):
            found.setdefault((prompt_id, text_hash), generation_id)
    return found
