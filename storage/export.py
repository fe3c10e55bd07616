"""Judgments → TRL-ready datasets (conversational format), split by prompt.

Raw judgments are aggregated here, at export time, so a new rule can re-read
old data. The rules:

* Pairs. Every judgment becomes votes on (prompt, response x, response y):
  a pairwise choice is one vote, a ranking of n gives its n(n-1)/2 votes, a
  correction votes corrected ≻ original. Each annotator's latest vote on a
  pair counts once. A pair is kept when one response has strictly more
  (weighted) votes than every other outcome; ties, both-bad and no-majority
  pairs are left out and counted.
* Review. A judgment a reviewer rejected (storage.annotation_review) is in no
  export; as an annotator's latest vote on a pair it still supersedes their
  earlier ones, so rejecting an edit does not bring back what it replaced.
* Ratings. The mean score per (prompt, response): ≥4 desirable, ≤2
  undesirable, 3 left out (KTO rows); within a prompt, responses whose means
  differ give pairs, unless annotators compared that pair directly.
* Splits are by prompt (a hash of the prompt and the seed), so no prompt is in
  both train and test.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Text, cast, func, select
from sqlmodel import Session, col

from storage.crud import StoreError, content_hash
from storage.db import session_scope
from storage.files import save_atomically
from storage.models import Generation, Judgment, JudgmentReview, Prompt, ReviewDecision, Round
from storage.records import conversation
from storage.redteam import adversarial_prompt_ids
from storage.validation import ConfigError, Strict, YamlFloat, problems, shown

KINDS = ("sft", "preference", "unpaired", "prompt")
FORMATS = ("jsonl", "parquet", "hf")
AGGREGATIONS = ("majority", "weighted", "drop_flagged")
SFT_SOURCES: tuple[SftSource, ...] = ("corrections", "ratings", "chosen")
_CHUNK = 5000
_EXPORTED_KINDS = ("pairwise", "ranking", "correction", "rating")

Kind = Literal["sft", "preference", "unpaired", "prompt"]
Format = Literal["jsonl", "parquet", "hf"]
Aggregation = Literal["majority", "weighted", "drop_flagged"]
SftSource = Literal["corrections", "ratings", "chosen"]


class DataOptions(Strict):
    """Which judgments make a dataset and how its prompts are split: a round config's `data:` section,
    and the part of every export's options that a round chooses."""

    model_config = ConfigDict(strict=True)

    aggregation: Aggregation = "majority"
    """majority | weighted (votes weighted by annotator quality) | drop_flagged (flagged annotators left out)."""
    min_annotators: int = Field(1, ge=1)
    """Pairs judged by fewer distinct annotators are left out."""
    since_round: int | Literal["parent"] | None = None
    """Only judgments made after that round's snapshot; "parent": after the round that made the parent
    (all judgments when the parent came from no round). Later rounds train on fresh, on-policy pairs."""
    test_fraction: YamlFloat = Field(0.1, gt=0, lt=1)
    """Share of prompts held out (a round validates and evaluates on them)."""
    seed: int = 0
    adversarial_weight: YamlFloat = Field(1.0, ge=1, le=100)
    """Training rows from the adversarial set (storage.redteam) count this many times: whole copies, and one
    more for a seeded share of the rows that equals the fraction (2.5: every row twice, half of them thrice)."""
    criterion: str | None = Field(None, min_length=1, max_length=64)
    """Pairs from one criterion's answers (the app's `questions`, e.g. harmless) instead of the overall choice;
    rankings, corrections and ratings carry no criterion and are left out."""

    @field_validator("since_round", mode="plain")
    @classmethod
    def _round_id_or_parent(cls, value):
        if value is None or value == "parent" or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ValueError(f"{shown(value)} is neither a round id nor 'parent'")


class ExportOptions(DataOptions):
    """One export: the round's data options plus what a caller fills in (kind, formats, annotator quality, bounds).

    Built by code, not read from a file, so values are coerced (a set of annotator ids is a frozenset);
    a bad value is a ConfigError naming the field.
    """

    model_config = ConfigDict(strict=False)

    kind: Kind
    test_fraction: YamlFloat = Field(0.1, ge=0, lt=1)
    """0 is allowed here: an export may hold nothing out."""
    since_round: int | None = None
    formats: tuple[Format, ...] = ("jsonl",)
    annotator_weights: dict[int, float] | None = None
    excluded_annotators: frozenset[int] = frozenset()
    max_judgment_id: int | None = None
    sft_sources: tuple[SftSource, ...] = SFT_SOURCES

    def __init__(self, **values: Any):
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise ConfigError(problems(error, model=type(self), path="export options")) from None

    @field_validator("since_round", mode="plain")
    @classmethod
    def _round_id_or_parent(cls, value):
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ValueError(f"{shown(value)} is not a round id (the round resolves 'parent' before exporting)")

    @field_validator("formats")
    @classmethod
    def _some_format(cls, value):
        if not value:
            raise ValueError(f"none given (use any of {', '.join(FORMATS)})")
        return value

    @model_validator(mode="after")
    def _weighted_needs_weights(self):
        if self.aggregation == "weighted" and not self.annotator_weights:
            raise ValueError("aggregation: 'weighted' needs annotator_weights")
        return self


# --- reading the store ------------------------------------------------------------


@dataclass
class _Raw:
    judgments: list[tuple]  # (id, kind, user_id, prompt_id, generation_ids, payload)
    prompt_text: dict[int, str]
    prompt_hash: dict[int, str]
    generation: dict[int, tuple[str, str]]  # id -> (text_hash, text)
    digest: str = ""
    decisions: dict[int, str] = field(default_factory=dict)  # judgment id -> a reviewer's decision, where reviewed
    prompt_messages: dict[int, list[dict[str, str]]] = field(default_factory=dict)  # multi-turn prompts' turns


def _judgment_bounds(session: Session, options: ExportOptions) -> tuple[int | None, int | None]:
    lower = None
    if options.since_round is not None:
        round_ = session.get(Round, options.since_round)
        if round_ is None:
            raise StoreError(f"since_round: no round {options.since_round}")
        lower = (round_.data_snapshot or {}).get("max_judgment_id")
    return lower, options.max_judgment_id


def _read_judgments(
    session: Session, kinds: tuple[str, ...] | None, lower: int | None, upper: int | None
) -> tuple[list[tuple], str]:
    """Judgment rows and their hash; JSON columns are fetched as text and decoded in one call (fast)."""
    query = select(
        col(Judgment.id),
        col(Judgment.kind),
        col(Judgment.user_id),
        col(Judgment.prompt_id),
        cast(Judgment.generation_ids, Text),
        cast(Judgment.payload, Text),
    )
    if kinds is not None:
        query = query.where(col(Judgment.kind).in_(kinds))
    if lower is not None:
        query = query.where(col(Judgment.id) > lower)
    if upper is not None:
        query = query.where(col(Judgment.id) <= upper)
    fetched = session.connection().execute(query.order_by(col(Judgment.id))).all()
    digest = hashlib.sha256()
    for row in fetched:
        digest.update("\x1f".join(map(str, row)).encode("utf-8") + b"\n")
    decoded = json.loads("[" + ",".join(f"[{ids},{payload}]" for *_, ids, payload in fetched) + "]")
    rows = [(row[0], row[1], row[2], row[3], ids, payload) for row, (ids, payload) in zip(fetched, decoded)]
    return rows, digest.hexdigest()


def _read(session: Session, options: ExportOptions, kinds: tuple[str, ...]) -> _Raw:
    lower, upper = _judgment_bounds(session, options)
    judgments, digest = _read_judgments(session, kinds, lower, upper)

    prompt_ids = sorted({j[3] for j in judgments})
    prompt_text, prompt_hash = {}, {}
    prompt_messages = {}
    prompts = select(col(Prompt.id), col(Prompt.text), col(Prompt.content_hash), col(Prompt.messages))
    for rows in _chunked_select(session, prompts, Prompt.id, prompt_ids):
        for prompt_id, text, content, messages in rows:
            prompt_text[prompt_id], prompt_hash[prompt_id] = text, content
            if messages:
                prompt_messages[prompt_id] = messages
    generation_ids = sorted({g for j in judgments for g in j[4]})
    generation = {}
    for rows in _chunked_select(
        session,
        select(col(Generation.id), col(Generation.text_hash), col(Generation.text)),
        Generation.id,
        generation_ids,
    ):
        for generation_id, content, text in rows:
            generation[generation_id] = (content, text)
    return _Raw(
        judgments,
        prompt_text,
        prompt_hash,
        generation,
        digest,
        _decisions(session, judgments, lower, upper),
        prompt_messages,
    )


def _decisions(session: Session, judgments: list[tuple], lower: int | None, upper: int | None) -> dict[int, str]:
    """Review decisions on the judgments read; reviews are few, so they are read by id range, not by id list."""
    query = select(col(JudgmentReview.judgment_id), col(JudgmentReview.decision))
    if lower is not None:
        query = query.where(col(JudgmentReview.judgment_id) > lower)
    if upper is not None:
        query = query.where(col(JudgmentReview.judgment_id) <= upper)
    read = {j[0] for j in judgments}
    return {judgment_id: decision for judgment_id, decision in session.execute(query) if judgment_id in read}


def _chunked_select(session: Session, query, column, ids: list[int]):
    for start in range(0, len(ids), _CHUNK):
        yield session.connection().execute(query.where(column.in_(ids[start : start + _CHUNK]))).all()


def snapshot(session: Session) -> dict[str, Any]:
    """What a round trains on: every judgment up to the current highest id, and a hash of them."""
    max_id = session.execute(select(func.max(Judgment.id))).scalar() or 0
    rows, digest = _read_judgments(session, _EXPORTED_KINDS, None, max_id)
    by_kind = Counter(row[1] for row in rows)
    return {
        "max_judgment_id": max_id,
        "judgments": len(rows),
        "by_kind": dict(sorted(by_kind.items())),
        "hash": digest,
        "taken_at": datetime.now(UTC).isoformat(),
    }


# --- aggregation -----------------------------------------------------------------------


@dataclass
class _Votes:
    """Per (prompt, pair of response hashes): each annotator's latest vote."""

    pairs: dict[tuple[int, str, str], dict[int, str | None]] = field(default_factory=lambda: defaultdict(dict))
    source: Counter = field(default_factory=Counter)

    def vote(self, prompt_id: int, x: str, y: str, user_id: int, outcome: str | None, source: str) -> None:
        """`outcome` None: a rejected vote, which counts for nothing but still supersedes the user's earlier ones."""
        key = (prompt_id, min(x, y), max(x, y))
        self.pairs[key][user_id] = outcome
        if outcome is not None:
            self.source[source] += 1


@dataclass
class _Aggregate:
    texts: dict[tuple[int, str], str]
    pairs: list[tuple[int, str, str, str]]  # (prompt_id, chosen_hash, rejected_hash, source)
    rating_means: dict[tuple[int, str], float]
    corrections: list[tuple[int, str]]  # (prompt_id, corrected hash)
    left_out: Counter
    sources: Counter


def aggregate(raw: _Raw, options: ExportOptions) -> _Aggregate:
    texts: dict[tuple[int, str], str] = {}
    votes = _Votes()
    ratings: dict[tuple[int, str], list[int]] = defaultdict(list)
    corrections: list[tuple[int, str]] = []
    left_out: Counter = Counter()

    def response(prompt_id: int, generation_id: int) -> str:
        digest, text = raw.generation[generation_id]
        texts[(prompt_id, digest)] = text
        return digest

    for judgment_id, kind, user_id, prompt_id, generation_ids, payload in raw.judgments:
        if user_id in options.excluded_annotators:
            left_out["excluded_annotator_judgments"] += 1
            continue
        if options.criterion is not None and (
            kind != "pairwise" or options.criterion not in (payload.get("criteria") or {})
        ):
            left_out[f"no_answer_for_{options.criterion}"] += 1
            continue
        was_rejected = raw.decisions.get(judgment_id) == ReviewDecision.rejected.value
        if kind == "pairwise":
            a, b = (response(prompt_id, g) for g in generation_ids)
            choice = payload["criteria"][options.criterion] if options.criterion else payload.get("choice")
            outcome = {"a": a, "b": b}.get(choice, choice)
            votes.vote(prompt_id, a, b, user_id, None if was_rejected else outcome, "pairwise")
        elif kind == "ranking":
            ranked = [response(prompt_id, g) for g in generation_ids]
            for better, worse in combinations(ranked, 2):
                votes.vote(prompt_id, better, worse, user_id, None if was_rejected else better, "ranking")
        elif was_rejected:
            continue
        elif kind == "correction":
            original = response(prompt_id, generation_ids[0])
            corrected_text = payload["corrected"]
            corrected = content_hash(corrected_text)
            texts[(prompt_id, corrected)] = corrected_text
            corrections.append((prompt_id, corrected))
            if corrected != original:
                votes.vote(prompt_id, corrected, original, user_id, corrected, "correction")
        elif kind == "rating":
            ratings[(prompt_id, response(prompt_id, generation_ids[0]))].append(payload["score"])

    pairs: list[tuple[int, str, str, str]] = []
    weights = options.annotator_weights if options.aggregation == "weighted" else None
    compared: set[tuple[int, str, str]] = set()
    for (prompt_id, x, y), latest in votes.pairs.items():
        by_user = {user_id: outcome for user_id, outcome in latest.items() if outcome is not None}
        if not by_user:
            left_out["rejected_in_review"] += 1
            continue
        compared.add((prompt_id, x, y))
        if len(by_user) < options.min_annotators:
            left_out["too_few_annotators"] += 1
            continue
        tally: Counter = Counter()
        for user_id, outcome in by_user.items():
            tally[outcome] += weights.get(user_id, 1.0) if weights else 1.0  # type: ignore[assignment]  # float weights in a Counter
        (top, top_votes), *rest = tally.most_common()
        if rest and (rest[0][1] > top_votes or math.isclose(rest[0][1], top_votes)):
            left_out["no_majority"] += 1
        elif top in ("tie", "both_bad"):
            left_out[top] += 1
        else:
            pairs.append((prompt_id, top, y if top == x else x, "votes"))

    rating_means = {key: sum(scores) / len(scores) for key, scores in ratings.items()}
    by_prompt: dict[int, list[tuple[str, float]]] = defaultdict(list)
    for (prompt_id, digest), mean in rating_means.items():
        by_prompt[prompt_id].append((digest, mean))
    for prompt_id, scored in by_prompt.items():
        for (x, mx), (y, my) in combinations(scored, 2):
            if (prompt_id, *sorted((x, y))) in compared:
                continue
            if mx == my:
                left_out["equal_rating_pairs"] += 1
                continue
            chosen, rejected = (x, y) if mx > my else (y, x)
            pairs.append((prompt_id, chosen, rejected, "ratings"))
    sources = Counter(votes.source)
    sources["rating_pairs"] = sum(1 for p in pairs if p[3] == "ratings")
    return _Aggregate(texts, pairs, rating_means, corrections, left_out, sources)


# --- rows ---------------------------------------------------------------------------------


def _user(raw: _Raw, prompt_id: int) -> list[dict[str, str]]:
    """The prompt as TRL's conversational format: all of a multi-turn prompt's turns, else one user turn."""
    return conversation(raw.prompt_text[prompt_id], raw.prompt_messages.get(prompt_id))


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _preference_rows(raw: _Raw, agg: _Aggregate) -> list[tuple[int, dict]]:
    prompts = {p: _user(raw, p) for p in {pair[0] for pair in agg.pairs}}
    answers: dict[tuple[int, str], list] = {}

    def answer(key):
        if key not in answers:
            answers[key] = _assistant(agg.texts[key])
        return answers[key]

    return [
        (p, {"prompt": prompts[p], "chosen": answer((p, c)), "rejected": answer((p, r))}) for p, c, r, _ in agg.pairs
    ]


def _unpaired_rows(raw: _Raw, agg: _Aggregate) -> list[tuple[int, dict]]:
    labels: dict[tuple[int, str], bool] = {}
    for key, mean in agg.rating_means.items():
        if mean >= 4:
            labels[key] = True
        elif mean <= 2:
            labels[key] = False
        else:
            agg.left_out["rating_neutral"] += 1
    from_pairs: dict[tuple[int, str], set[bool]] = defaultdict(set)
    for p, c, r, source in agg.pairs:
        if source == "votes":
            from_pairs[(p, c)].add(True)
            from_pairs[(p, r)].add(False)
    for key, seen in from_pairs.items():
        if key in labels:
            continue
        if len(seen) > 1:
            agg.left_out["chosen_and_rejected"] += 1
            continue
        labels[key] = seen.pop()
    return [
        (p, {"prompt": _user(raw, p), "completion": _assistant(agg.texts[(p, d)]), "label": label})
        for (p, d), label in labels.items()
    ]


def _sft_rows(raw: _Raw, agg: _Aggregate, sources: tuple[str, ...]) -> list[tuple[int, dict]]:
    keep: dict[tuple[int, str], str] = {}
    if "corrections" in sources:
        for key in agg.corrections:
            keep.setdefault(key, "corrections")
    if "ratings" in sources:
        for key, mean in agg.rating_means.items():
            if mean >= 4:
                keep.setdefault(key, "ratings")
    if "chosen" in sources:
        for p, c, _r, source in agg.pairs:
            if source == "votes":  # a 3-star response that beat a 1-star one is no demonstration
                keep.setdefault((p, c), "chosen")
    agg.sources.update(f"sft_{source}" for source in keep.values())
    return [(p, {"prompt": _user(raw, p), "completion": _assistant(agg.texts[(p, d)])}) for (p, d) in keep]


def in_test_split(prompt_hash: str, options: ExportOptions) -> bool:
    digest = hashlib.sha256(f"{options.seed}:{prompt_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < options.test_fraction


def _copies(options: ExportOptions, prompt_hash: str, nth: int) -> int:
    """How many times an adversarial training row goes in: the weight's whole part, plus one for a seeded share."""
    whole = int(options.adversarial_weight)
    digest = hashlib.sha256(f"adversarial:{options.seed}:{prompt_hash}:{nth}".encode()).digest()
    return whole + (int.from_bytes(digest[:8], "big") / 2**64 < options.adversarial_weight - whole)


def build_export(session: Session, options: ExportOptions) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """The dataset's rows per split and its manifest, without writing anything."""
    if options.kind == "prompt":
        raw = _Raw([], {}, {}, {})
        for prompt_id, text, digest, messages in session.execute(
            select(col(Prompt.id), col(Prompt.text), col(Prompt.content_hash), col(Prompt.messages))
        ):
            raw.prompt_text[prompt_id], raw.prompt_hash[prompt_id] = text, digest
            if messages:
                raw.prompt_messages[prompt_id] = messages
        keyed = [(p, {"prompt": _user(raw, p)}) for p in raw.prompt_text]
        agg = _Aggregate({}, [], {}, [], Counter(), Counter())
    else:
        raw = _read(session, options, _EXPORTED_KINDS)
        agg = aggregate(raw, options)
        if options.kind == "preference":
            keyed = _preference_rows(raw, agg)
        elif options.kind == "unpaired":
            keyed = _unpaired_rows(raw, agg)
        else:
            keyed = _sft_rows(raw, agg, options.sft_sources)

    splits: dict[str, list[dict]] = {"train": [], "test": []}
    split_prompts: dict[str, set[int]] = {"train": set(), "test": set()}
    split_of: dict[int, str] = {}
    adversarial = adversarial_prompt_ids(session)
    adversarial_rows: dict[str, list[int]] = {"train": [], "test": []}
    for prompt_id, row in sorted(keyed, key=lambda item: item[0]):
        if prompt_id not in split_of:
            split_of[prompt_id] = "test" if in_test_split(raw.prompt_hash[prompt_id], options) else "train"
        split = split_of[prompt_id]
        copies = 1
        if prompt_id in adversarial:
            adversarial_rows[split].append(len(splits[split]))
            if split == "train":
                copies = _copies(options, raw.prompt_hash[prompt_id], len(adversarial_rows["train"]))
        splits[split].extend([row] * copies)
        split_prompts[split].add(prompt_id)

    manifest = {
        "kind": options.kind,
        "formats": list(options.formats),
        "created_at": datetime.now(UTC).isoformat(),
        "counts": {split: len(rows) for split, rows in splits.items()},
        "prompts": {split: len(ids) for split, ids in split_prompts.items()},
        "columns": list(next((rows[0] for rows in splits.values() if rows), {}).keys()),
        "left_out": dict(sorted(agg.left_out.items())),
        "sources": dict(sorted(agg.sources.items())),
        "criterion": options.criterion,
        "aggregation": {
            "rule": options.aggregation,
            "description": "each annotator's latest vote per pair; a response wins with strictly more "
            "votes than any other outcome (weighted by annotator quality when 'weighted')",
            "min_annotators": options.min_annotators,
            "excluded_annotators": sorted(options.excluded_annotators),
            "annotator_weights": {str(k): v for k, v in sorted((options.annotator_weights or {}).items())}
            if options.aggregation == "weighted"
            else None,
        },
        "review": _review_counts(raw),
        "adversarial": {
            "weight": options.adversarial_weight,
            "rows": {split: len(rows) for split, rows in adversarial_rows.items()},
            "test_rows": adversarial_rows["test"],
            "prompts": len({p for p in adversarial if p in split_of}),
        },
        "judgments": {
            "count": len(raw.judgments),
            "max_id": max((j[0] for j in raw.judgments), default=None),
            "hash": raw.digest,
            "by_kind": dict(sorted(Counter(j[1] for j in raw.judgments).items())),
            "since_round": options.since_round,
        },
        "split": {
            "by": "sha256(seed:prompt content hash)",
            "test_fraction": options.test_fraction,
            "seed": options.seed,
        },
    }
    return splits, manifest


def _review_counts(raw: _Raw) -> dict[str, int]:
    """Of the judgments read: how many a reviewer rejected (left out of the rows), accepted, or has not reviewed."""
    decided = Counter(raw.decisions.values())
    return {
        "rejected_excluded": decided[ReviewDecision.rejected.value],
        "accepted": decided[ReviewDecision.accepted.value],
        "unreviewed": len(raw.judgments) - len(raw.decisions),
    }


# --- writing and loading -------------------------------------------------------------------


def arrow_schema(kind: str):
    """Column types per kind, so an empty split still has TRL's columns."""
    import pyarrow as pa

    messages = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    columns = {
        "prompt": [("prompt", messages)],
        "sft": [("prompt", messages), ("completion", messages)],
        "preference": [("prompt", messages), ("chosen", messages), ("rejected", messages)],
        "unpaired": [("prompt", messages), ("completion", messages), ("label", pa.bool_())],
    }[kind]
    return pa.schema(columns)


def _tables(splits: dict[str, list[dict]], kind: str):
    import pyarrow as pa

    schema = arrow_schema(kind)
    return {split: pa.Table.from_pylist(rows, schema=schema) for split, rows in splits.items()}


def _jsonl_lines(rows: list[dict]):
    """JSON lines; message lists shared between rows (a prompt's, a response's) are encoded once."""
    encoded: dict[int, str] = {}

    def encode(value) -> str:
        key = id(value)
        if key not in encoded:
            encoded[key] = json.dumps(value, ensure_ascii=False)
        return encoded[key]

    for row in rows:
        yield "{" + ", ".join(f'"{column}": {encode(value)}' for column, value in row.items()) + "}\n"


def _write(folder: Path, splits: dict[str, list[dict]], manifest: dict[str, Any]) -> None:
    for fmt in manifest["formats"]:
        if fmt == "jsonl":
            for split, rows in splits.items():
                with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as handle:
                    handle.writelines(_jsonl_lines(rows))
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            for split, table in _tables(splits, manifest["kind"]).items():
                pq.write_table(table, folder / f"{split}.parquet")
        elif fmt == "hf":
            from datasets import Dataset, DatasetDict

            DatasetDict(
                {split: Dataset(table) for split, table in _tables(splits, manifest["kind"]).items()}
            ).save_to_disk(str(folder / "hf"), num_shards={split: 1 for split in splits})
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def export_dataset(out_dir: str | Path, options: ExportOptions, url: str | None = None) -> dict[str, Any]:
    """Write the dataset and manifest.json into `out_dir` (which must not exist) all at once."""
    with session_scope(url) as session:
        splits, manifest = build_export(session, options)
    save_atomically(Path(out_dir), lambda folder: _write(folder, splits, manifest))
    return manifest


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(out_dir) / "manifest.json").read_text(encoding="utf-8"))


def load_export(out_dir: str | Path):
    """The exported splits as a `datasets.DatasetDict`, from whichever format was written."""
    from datasets import Dataset, DatasetDict, load_from_disk

    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    formats = manifest["formats"]
    if "hf" in formats:
        return load_from_disk(str(out_dir / "hf"))
    if "parquet" in formats:
        import pyarrow.parquet as pq

        return DatasetDict({split: Dataset(pq.read_table(out_dir / f"{split}.parquet")) for split in ("train", "test")})
    splits = {}
    for split in ("train", "test"):
        with open(out_dir / f"{split}.jsonl", encoding="utf-8") as handle:
            splits[split] = [json.loads(line) for line in handle if line.strip()]
    return DatasetDict({split: Dataset(table) for split, table in _tables(splits, manifest["kind"]).items()})
