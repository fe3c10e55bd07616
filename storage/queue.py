"""The annotation queue: which item an annotator sees next, and what their submit stores.

An item goes to `overlap` different annotators and never twice to the same one.
Serving an item claims it for a while (ItemClaim), so concurrent annotators do
not all receive the last open slot; a submit takes one of the item's slots
with a conditional UPDATE of `judged_count` in the transaction that stores the
judgment, so no item ever gets more than `overlap` judges. Skips are judgments
of kind `skip`: they take the item out of that user's queue but fill no slot.

Quality checks are mixed into the work (`Extras`): with probability `gold_rate`
the next item is an open gold item (known answer) the user has not judged, and
with probability `swap_rate` a pair the user judged at least `swap_gap` pairs
ago comes back as a new item with the sides they saw swapped (purpose
`swap_check`, assigned to them alone). Both look like any other item, and both
are only mixed in while there is ordinary work to mix them into. Ordinary items
come in `priority` order (storage.priority sets it), then queue order.

Judgments of gold items and swap checks are ordinary judgments of their pair
and stay in training exports: a gold pair is a real pair with a known answer,
and a swap check is the same annotator's later vote on a pair they judged,
which export counts once (each annotator's latest vote per pair).
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    Select,
    and_,
    bindparam,
    case,
    delete,
    distinct,
    exists,
    func,
    literal,
    or_,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.crud import StoreError, check_client_key, insert_or_ignore, validate_judgment_payload
from storage.models import (
    AnnotationItem,
    Generation,
    ItemClaim,
    Judgment,
    JudgmentKind,
    Prompt,
    utcnow,
)
from storage.redteam import ADVERSARIAL_PRIORITY, adversarial_prompt_ids

CLAIM_SECONDS = 600
ITEM_KINDS = (
    JudgmentKind.rating.value,
    JudgmentKind.pairwise.value,
    JudgmentKind.ranking.value,
    JudgmentKind.correction.value,
)
_MIN_GENERATIONS = {"rating": 1, "correction": 1, "pairwise": 2, "ranking": 3}
RANKING_SIZE = 4
TRAIN, GOLD, SWAP_CHECK = "train", "gold", "swap_check"
SWAP_CANDIDATES = 50


# --- filling the queue ----------------------------------------------------------------


def _generations_by_prompt(
    session: Session, *, version_id: int | None, prompt_ids: Iterable[int] | None
) -> dict[int, list[int]]:
    query = select(Generation.prompt_id, Generation.id).order_by(col(Generation.prompt_id), col(Generation.id))
    query = query.where(
        col(Generation.model_version_id) == version_id
        if version_id is not None
        else col(Generation.model_version_id).is_(None)
    )
    if prompt_ids is not None:
        query = query.where(col(Generation.prompt_id).in_(list(prompt_ids)))
    grouped: dict[int, list[int]] = {}
    for prompt_id, generation_id in session.exec(query).all():
        assert generation_id is not None  # a stored row's id
        grouped.setdefault(prompt_id, []).append(generation_id)
    return grouped


def _queued_generation_ids(session: Session, *, kind: str, prompt_ids: Iterable[int]) -> set[int]:
    rows = session.exec(
        select(AnnotationItem.generation_ids).where(
            col(AnnotationItem.kind) == kind, col(AnnotationItem.prompt_id).in_(list(prompt_ids))
        )
    ).all()
    return {generation_id for ids in rows for generation_id in ids}


def _groups(kind: str, generation_ids: list[int]) -> list[list[int]]:
    if kind in ("rating", "correction"):
        return [[g] for g in generation_ids]
    if kind == "pairwise":
        return [generation_ids[i : i + 2] for i in range(0, len(generation_ids) - 1, 2)]
    chunks = [generation_ids[i : i + RANKING_SIZE] for i in range(0, len(generation_ids), RANKING_SIZE)]
    return [chunk for chunk in chunks if len(chunk) >= _MIN_GENERATIONS["ranking"]]


def enqueue(
    session: Session,
    *,
    kind: str,
    version_id: int | None,
    overlap: int,
    prompt_ids: Iterable[int] | None = None,
    priority: float = 0.0,
    purpose: str = "train",
) -> list[AnnotationItem]:
    """Queue items of `kind` from a version's generations that are not queued for that kind yet.

    Ratings and corrections take one response each, pairs two, rankings 3–4.
    """
    if kind not in ITEM_KINDS:
        raise StoreError(f"kind: {kind!r} is not one of {', '.join(ITEM_KINDS)}")
    if overlap < 1:
        raise StoreError(f"overlap: must be at least 1, got {overlap}")
    grouped = _generations_by_prompt(session, version_id=version_id, prompt_ids=prompt_ids)
    queued = _queued_generation_ids(session, kind=kind, prompt_ids=grouped)
    adversarial = adversarial_prompt_ids(session) if purpose == TRAIN else set()
    items = []
    for prompt_id, generation_ids in grouped.items():
        fresh = [g for g in generation_ids if g not in queued]
        for group in _groups(kind, fresh):
            items.append(
                AnnotationItem(
                    kind=kind,
                    prompt_id=prompt_id,
                    generation_ids=group,
                    overlap=overlap,
                    priority=priority + (ADVERSARIAL_PRIORITY if prompt_id in adversarial else 0.0),
                    purpose=purpose,
                )
            )
    session.add_all(items)
    session.flush()
    return items


def enqueue_pairs(
    session: Session, *, prompt_ids: Iterable[int] | None, version_id: int | None, overlap: int, priority: float = 0.0
) -> int:
    return len(
        enqueue(
            session, kind="pairwise", prompt_ids=prompt_ids, version_id=version_id, overlap=overlap, priority=priority
        )
    )


def enqueue_mix(
    session: Session,
    *,
    version_id: int | None,
    overlap: int,
    mix: dict[str, float],
    prompt_ids: Iterable[int] | None = None,
    priority: float = 0.0,
    agreement_share: float = 0.0,
    agreement_overlap: int = 2,
) -> dict[str, int]:
    """Spread a version's new generations over the kinds so item counts follow `mix`, prompt by prompt.

    A prompt goes to the kind furthest behind its share among those its number
    of responses allows (a ranking needs three, a pair two). Every kind's items
    are queued for `agreement_overlap` annotators in the share `agreement_share`
    of its prompts (evenly spread, the first one included), for `overlap` otherwise.
    """
    if not 0.0 <= agreement_share <= 1.0:
        raise StoreError(f"agreement_share: must be between 0 and 1, got {agreement_share}")
    unknown = set(mix) - set(ITEM_KINDS)
    if unknown:
        raise StoreError(f"queue_mix: unknown kind {sorted(unknown)[0]!r} (expected {', '.join(ITEM_KINDS)})")
    grouped = _generations_by_prompt(session, version_id=version_id, prompt_ids=prompt_ids)
    taken = {g for kind in ITEM_KINDS for g in _queued_generation_ids(session, kind=kind, prompt_ids=grouped)}
    weights = {kind: share for kind, share in mix.items() if share > 0}
    counts = {kind: 0 for kind in weights}
    prompts_of = {kind: 0 for kind in weights}
    for prompt_id, generation_ids in grouped.items():
        fresh = [g for g in generation_ids if g not in taken]
        possible = [kind for kind in weights if len(fresh) >= _MIN_GENERATIONS[kind]]
        if not possible:
            continue
        total = sum(counts.values()) + 1
        kind = min(possible, key=lambda k: (counts[k] / total - weights[k], ITEM_KINDS.index(k)))
        n = prompts_of[kind]
        shared = math.ceil((n + 1) * agreement_share) > math.ceil(n * agreement_share)
        made = enqueue(
            session,
            kind=kind,
            version_id=version_id,
            overlap=max(overlap, agreement_overlap) if shared else overlap,
            prompt_ids=[prompt_id],
            priority=priority,
        )
        counts[kind] += len(made)
        prompts_of[kind] += 1
    return counts


# --- serving --------------------------------------------------------------------------------
# The statements on the annotators' hot path are built once, with bound parameters, so
# each request pays for executing them and not for composing them.

_USER: BindParameter[int] = bindparam("user_id")
_KIND: BindParameter[str] = bindparam("kind")
_ITEM: BindParameter[int] = bindparam("item_id")
_NOW = bindparam("now", type_=ItemClaim.__table__.c.expires_at.type)  # type: ignore[attr-defined]  # see storage.models
_judged_by_user = exists().where(col(Judgment.user_id) == _USER, col(Judgment.item_id) == AnnotationItem.id)
_held_by_others = (
    select(func.count(col(ItemClaim.id)))
    .where(
        col(ItemClaim.item_id) == AnnotationItem.id, col(ItemClaim.user_id) != _USER, col(ItemClaim.expires_at) > _NOW
    )
    .scalar_subquery()
)
_still_open = col(AnnotationItem.judged_count) < AnnotationItem.overlap  # the predicate of ix_annotationitem_open
_open_to_user = and_(col(AnnotationItem.kind) == _KIND, _still_open, ~_judged_by_user)
_ITEM_COLUMNS = (
    AnnotationItem.id,
    AnnotationItem.kind,
    AnnotationItem.prompt_id,
    AnnotationItem.generation_ids,
    AnnotationItem.overlap,
    AnnotationItem.purpose,
)
_free = col(AnnotationItem.judged_count) + _held_by_others < AnnotationItem.overlap
_SERVING_ORDER = (col(AnnotationItem.priority).desc(), col(AnnotationItem.id))


def _first_open(*conditions) -> Select:
    """The first item open to the user in serving order among those meeting `conditions` (priority last, to merge)."""
    return (
        select(*_ITEM_COLUMNS, AnnotationItem.priority)  # type: ignore[call-overload]  # typed for up to 4 columns
        .where(_open_to_user, *conditions)
        .order_by(*_SERVING_ORDER)
        .limit(1)
    )


# Each statement below walks an index in serving order and stops at its first row: the user's live
# claims (ix_itemclaim_user_id_expires_at), open items of one purpose (ix_annotationitem_open), the
# items assigned to the user (ix_annotationitem_assigned_user_id). "Ordinary" work is purpose train
# or assigned to the user, and its best item is the better of the two branches' first rows.
_MY_CLAIM = _first_open(col(ItemClaim.user_id) == _USER, col(ItemClaim.expires_at) > _NOW).join_from(
    ItemClaim, AnnotationItem, col(AnnotationItem.id) == ItemClaim.item_id
)
_ordinary = union_all(
    *(
        select(branch)
        for branch in (
            _first_open(col(AnnotationItem.purpose) == TRAIN, _free).subquery("train"),
            _first_open(col(AnnotationItem.assigned_user_id) == _USER, _free).subquery("assigned"),
        )
    )
)
_NEXT = _ordinary.order_by(_ordinary.selected_columns.priority.desc(), _ordinary.selected_columns.id).limit(1)
_NEXT_GOLD = _first_open(col(AnnotationItem.purpose) == GOLD, _free)
_checked = aliased(AnnotationItem)
_gap_bound = (
    select(Judgment.id)
    .where(col(Judgment.user_id) == _USER, col(Judgment.kind) == JudgmentKind.pairwise.value)
    .order_by(col(Judgment.id).desc())
    .offset(bindparam("swap_gap"))
    .limit(1)
    .scalar_subquery()
)
_SWAP_SOURCES = (
    select(Judgment.id, Judgment.prompt_id, Judgment.shown_order)
    .join(AnnotationItem, col(AnnotationItem.id) == Judgment.item_id)
    .where(
        col(Judgment.user_id) == _USER,
        col(Judgment.kind) == JudgmentKind.pairwise.value,
        col(AnnotationItem.purpose) == TRAIN,
        col(Judgment.id) <= _gap_bound,
        ~exists().where(col(_checked.source_judgment_id) == Judgment.id),
    )
    .order_by(col(Judgment.id).desc())
    .limit(SWAP_CANDIDATES)
)
# Remaining = open train items of the kind (counted in ix_annotationitem_open alone) + open items assigned
# to the user for another purpose and not judged by them - open train items they judged. The last term,
# like done and skipped, comes from the user's own judgments; only the first grows with the queue, and it
# reads nothing but the index.
_open_train = (
    select(func.count())
    .select_from(AnnotationItem)
    .where(col(AnnotationItem.kind) == _KIND, col(AnnotationItem.purpose) == TRAIN, _still_open)
    .scalar_subquery()
)
_open_assigned = (
    select(func.count())
    .select_from(AnnotationItem)
    .where(_open_to_user, col(AnnotationItem.assigned_user_id) == _USER, col(AnnotationItem.purpose) != TRAIN)
    .scalar_subquery()
)
_judged_open_train = func.count(
    distinct(case((and_(_still_open, col(AnnotationItem.purpose) == TRAIN), AnnotationItem.id)))
)
_PROGRESS = (
    select(
        func.count().filter(col(Judgment.kind) != JudgmentKind.skip.value),
        func.count().filter(col(Judgment.kind) == JudgmentKind.skip.value),
        _open_train + _open_assigned - _judged_open_train,
    )
    .select_from(Judgment)
    .join(AnnotationItem, col(AnnotationItem.id) == Judgment.item_id)
    .where(col(Judgment.user_id) == _USER, col(AnnotationItem.kind) == _KIND)
)
_KEY: BindParameter[str] = bindparam("client_key")
_BY_KEY = select(Judgment.id, Judgment.user_id, Judgment.item_id).where(col(Judgment.client_key) == _KEY)
_EARLIER = select(Judgment.id, Judgment.user_id, Judgment.item_id, col(Judgment.client_key) == _KEY).where(
    or_(col(Judgment.client_key) == _KEY, and_(col(Judgment.item_id) == _ITEM, col(Judgment.user_id) == _USER))
)
_TAKE_SLOT = (
    update(AnnotationItem)
    .where(col(AnnotationItem.id) == _ITEM, col(AnnotationItem.judged_count) < AnnotationItem.overlap)
    .values(judged_count=col(AnnotationItem.judged_count) + 1)
)
_RELEASE = delete(ItemClaim).where(col(ItemClaim.item_id) == _ITEM, col(ItemClaim.user_id) == _USER)


def _run(session: Session, statement: Any, params: dict):
    """A prebuilt statement on the session's connection, flushed first as autoflush would.

    Serving and submitting run about a dozen of these per vote; Core execution skips the ORM's
    per-statement setup and result processing (17 instead of 44 µs for a primary-key read).
    """
    session.flush()
    return session.connection().execute(statement, params)


_CLAIM_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def _serialise_claims(session: Session, kind: str) -> None:
    """On PostgreSQL, one transaction at a time picks and claims a new item of a kind, until it commits.

    Picking counts the item's live claims, so two transactions picking at once would both see the
    last free slot and both claim it: one annotator would then be refused on submit. SQLite's
    single writer serialises this already; several app processes on PostgreSQL need the lock (read
    committed: the pick after the lock sees the claim the previous holder committed).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_CLAIM_LOCK, {"key": zlib.crc32(f"claim:{kind}".encode())})


def _upsert_claim(session: Session, *, item_id: int, user_id: int, expires_at: datetime) -> None:
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(ItemClaim).values(item_id=item_id, user_id=user_id, expires_at=expires_at)
    session.execute(
        statement.on_conflict_do_update(index_elements=["item_id", "user_id"], set_={"expires_at": expires_at})
    )


@dataclass(frozen=True)
class QueuedItem:
    """What serving and submitting need of an AnnotationItem (a plain row, no ORM identity)."""

    id: int
    kind: str
    prompt_id: int
    generation_ids: list[int]
    overlap: int
    purpose: str = TRAIN


class Extras(BaseModel):
    """How often quality checks are mixed into a user's queue; `rng` draws (seed it for tests)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    gold_rate: float = Field(0.0, ge=0.0, le=1.0)
    swap_rate: float = Field(0.0, ge=0.0, le=1.0)
    swap_gap: int = Field(5, ge=0)
    rng: random.Random = Field(default_factory=random.Random, exclude=True)

    @model_validator(mode="after")
    def _room_for_work(self) -> Extras:
        if self.gold_rate + self.swap_rate > 1.0:
            raise ValueError(f"gold_rate + swap_rate must be at most 1, got {self.gold_rate + self.swap_rate!r}")
        return self


NO_EXTRAS = Extras()


_ITEM_ROW = select(*_ITEM_COLUMNS).where(col(AnnotationItem.id) == _ITEM)  # type: ignore[call-overload]  # as above


def _item_row(session: Session, item_id: int) -> QueuedItem | None:
    row = _run(session, _ITEM_ROW, {"item_id": item_id}).first()
    return QueuedItem(*row) if row is not None else None


def next_item(
    session: Session, *, user_id: int, kind: str, now: datetime | None = None, extras: Extras = NO_EXTRAS
) -> QueuedItem | None:
    """The next item of `kind` for this user, claimed for CLAIM_SECONDS; their own live claim comes first.

    Open means: fewer than `overlap` distinct users judged it, counting live
    claims by others, and this user has neither judged nor skipped it. With
    `extras`, a gold item or a swap check may come instead of the ordinary one.
    """
    now = now or utcnow()
    params = {"user_id": user_id, "kind": kind, "now": now}
    row = _run(session, _MY_CLAIM, params).first()
    if row is not None:
        item = QueuedItem(*row[:-1])
    else:
        _serialise_claims(session, kind)
        row = _run(session, _NEXT, params).first()
        if row is None:
            return None
        item = QueuedItem(*row[:-1])
        if extras.gold_rate or extras.swap_rate:
            item = _extra(session, params, extras) or item
    _upsert_claim(session, item_id=item.id, user_id=user_id, expires_at=now + timedelta(seconds=CLAIM_SECONDS))
    return item


def _extra(session: Session, params: dict, extras: Extras) -> QueuedItem | None:
    draw = extras.rng.random()
    if draw < extras.gold_rate:
        row = _run(session, _NEXT_GOLD, params).first()
        return QueuedItem(*row[:-1]) if row is not None else None
    if draw < extras.gold_rate + extras.swap_rate and params["kind"] == JudgmentKind.pairwise.value:
        return _new_swap_check(session, user_id=params["user_id"], gap=extras.swap_gap, rng=extras.rng)
    return None


def _new_swap_check(session: Session, *, user_id: int, gap: int, rng: random.Random) -> QueuedItem | None:
    """A new one-slot item for this user alone: one of their older pairs, with the sides they saw swapped."""
    sources = [
        row
        for row in _run(session, _SWAP_SOURCES, {"user_id": user_id, "swap_gap": gap}).all()
        if row.shown_order and len(row.shown_order) == 2
    ]
    if not sources:
        return None
    source = rng.choice(sources)
    item = AnnotationItem(
        kind=JudgmentKind.pairwise.value,
        prompt_id=source.prompt_id,
        generation_ids=list(reversed(source.shown_order)),
        overlap=1,
        purpose=SWAP_CHECK,
        assigned_user_id=user_id,
        source_judgment_id=source.id,
    )
    session.add(item)
    session.flush()
    assert item.id is not None  # set by the flush
    return QueuedItem(item.id, item.kind, item.prompt_id, list(item.generation_ids), item.overlap, item.purpose)


def claim(session: Session, *, item_id: int, user_id: int, now: datetime | None = None) -> None:
    """Hold the item for the user (their live claim is served before anything else), as serving does."""
    now = now or utcnow()
    _upsert_claim(session, item_id=item_id, user_id=user_id, expires_at=now + timedelta(seconds=CLAIM_SECONDS))


def item_row(session: Session, *, item_id: int) -> QueuedItem:
    """The queue item `item_id`, else StoreError."""
    return _require_item(session, item_id)


def stored(session: Session, *, client_key: str) -> bool:
    """Whether a judgment with this client key is stored (a repeated submit of the same view)."""
    return _run(session, _BY_KEY, {"client_key": client_key}).first() is not None


def open_count(session: Session) -> int:
    """Ordinary items that still want judgments (fewer than `overlap` judges); gold and swap checks are extras."""
    return session.exec(
        select(func.count())
        .select_from(AnnotationItem)
        .where(col(AnnotationItem.judged_count) < AnnotationItem.overlap, col(AnnotationItem.purpose) == TRAIN)
    ).one()


@dataclass(frozen=True)
class Progress:
    done: int
    skipped: int
    remaining: int


def progress(session: Session, *, user_id: int, kind: str) -> Progress:
    """How many items of `kind` this user judged and skipped, and how many are still open to them."""
    done, skipped, remaining = _run(session, _PROGRESS, {"user_id": user_id, "kind": kind}).one()
    return Progress(done=done, skipped=skipped, remaining=remaining)


@dataclass(frozen=True)
class TeamProgress:
    filled: int  # judgments the ordinary items of the kind have
    slots: int  # judgments they want (overlap per item)


_TEAM = select(
    func.coalesce(func.sum(case((_still_open, AnnotationItem.judged_count), else_=AnnotationItem.overlap)), 0),
    func.coalesce(func.sum(AnnotationItem.overlap), 0),
).where(col(AnnotationItem.kind) == _KIND, col(AnnotationItem.purpose) == TRAIN)


def team_progress(session: Session, *, kind: str) -> TeamProgress:
    """How far the whole team is with the ordinary items of `kind`: filled judgment slots of all slots."""
    filled, slots = _run(session, _TEAM, {"kind": kind}).one()
    return TeamProgress(filled=int(filled), slots=int(slots))


@dataclass(frozen=True)
class PromptDetails:
    source: str | None
    tags: list[str]
    messages: list[dict[str, str]] | None  # a multi-turn prompt's turns


def prompt_details(session: Session, *, prompt_id: int) -> PromptDetails:
    """A prompt's source, tags and turns, as imported."""
    row = session.execute(
        select(Prompt.source, Prompt.tags, Prompt.messages).where(col(Prompt.id) == prompt_id)
    ).first()
    if row is None:
        return PromptDetails(None, [], None)
    return PromptDetails(row[0], list(row[1] or []), row[2] or None)


# --- submitting ---------------------------------------------------------------------------------


def _require_item(session: Session, item_id: int) -> QueuedItem:
    item = _item_row(session, item_id)
    if item is None:
        raise StoreError(f"item: no queue item {item_id}")
    return item


def _repeat(session: Session, *, client_key: str, user_id: int, item_id: int) -> int | None:
    row = _run(session, _BY_KEY, {"client_key": client_key}).first()
    if row is None:
        return None
    if row.user_id != user_id or row.item_id != item_id:
        raise StoreError("client_key: already used for another judgment")
    return row.id


def _earlier(session: Session, *, client_key: str, user_id: int, item_id: int) -> int | None:
    """The judgment a repeated client key already stored, else None; refuses a second judgment of the item."""
    rows = _run(session, _EARLIER, {"client_key": client_key, "item_id": item_id, "user_id": user_id}).all()
    for judgment_id, owner, judged_item, same_key in rows:
        if same_key:
            if owner != user_id or judged_item != item_id:
                raise StoreError("client_key: already used for another judgment")
            return judgment_id
    if rows:
        raise StoreError(f"item: you already judged or skipped item {item_id}")
    return None


def _insert_judgment(
    session: Session,
    *,
    item: QueuedItem,
    kind: str,
    user_id: int,
    generation_ids: Sequence[int],
    payload: dict[str, Any],
    client_key: str,
    shown_order: Sequence[int] | None,
    duration_ms: int | None,
) -> tuple[int, bool]:
    """One INSERT that a concurrent request with the same client key cannot duplicate."""
    validate_judgment_payload(kind, generation_ids, payload)
    check_client_key(client_key)
    created = insert_or_ignore(
        session,
        Judgment,
        dict(
            kind=kind,
            user_id=user_id,
            prompt_id=item.prompt_id,
            item_id=item.id,
            generation_ids=list(generation_ids),
            payload=payload,
            shown_order=list(shown_order) if shown_order is not None else None,
            duration_ms=duration_ms,
            client_key=client_key,
            source="app",
            created_at=utcnow(),
        ),
        unique=["client_key"],
    )
    if not created:
        earlier = _repeat(session, client_key=client_key, user_id=user_id, item_id=item.id)
        assert earlier is not None  # the insert met the stored judgment with this key
        return earlier, False
    _run(session, _RELEASE, {"item_id": item.id, "user_id": user_id})
    return created[0], True


def submit(
    session: Session,
    *,
    item_id: int,
    user_id: int,
    generation_ids: Sequence[int],
    payload: dict[str, Any],
    client_key: str,
    shown_order: Sequence[int] | None = None,
    duration_ms: int | None = None,
) -> tuple[int, bool]:
    """Store one user's judgment of a queue item: (judgment id, created); a repeated `client_key` gives False.

    Refuses a second judgment of the same item by the same user, responses that
    are not the item's, and an item that already has `overlap` judges (the
    slot is taken with one conditional UPDATE, so two racing submits cannot
    both get the last one).
    """
    existing = _earlier(session, client_key=client_key, user_id=user_id, item_id=item_id)
    if existing is not None:
        return existing, False
    item = _require_item(session, item_id)
    if sorted(generation_ids) != sorted(item.generation_ids):
        raise StoreError(f"generation_ids: {list(generation_ids)} are not item {item_id}'s responses")
    if _run(session, _TAKE_SLOT, {"item_id": item_id}).rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult
        raise StoreError(f"item: {item_id} already has its {item.overlap} judgments")
    return _insert_judgment(
        session,
        item=item,
        kind=item.kind,
        user_id=user_id,
        generation_ids=generation_ids,
        payload=payload,
        client_key=client_key,
        shown_order=shown_order,
        duration_ms=duration_ms,
    )


def skip(
    session: Session,
    *,
    item_id: int,
    user_id: int,
    reason: str,
    client_key: str,
    shown_order: Sequence[int] | None = None,
    duration_ms: int | None = None,
) -> tuple[int, bool]:
    """Take an item out of this user's queue, keeping the reason (it fills no overlap slot)."""
    if not reason or not reason.strip():
        raise StoreError("reason: say why you skip")
    existing = _earlier(session, client_key=client_key, user_id=user_id, item_id=item_id)
    if existing is not None:
        return existing, False
    item = _require_item(session, item_id)
    return _insert_judgment(
        session,
        item=item,
        kind=JudgmentKind.skip.value,
        user_id=user_id,
        generation_ids=item.generation_ids,
        payload={"reason": reason.strip()},
        client_key=client_key,
        shown_order=shown_order,
        duration_ms=duration_ms,
    )


def item_judges(session: Session, *, item_id: int) -> list[int]:
    """The distinct users who judged an item (skips not counted)."""
    return list(
        session.exec(
            select(Judgment.user_id)
            .distinct()
            .where(col(Judgment.item_id) == item_id, col(Judgment.kind) != JudgmentKind.skip.value)
        ).all()
    )


_TEXTS: CompoundSelect = union_all(
    select(literal(None).label("id"), Prompt.text).where(col(Prompt.id) == bindparam("prompt_id")),
    select(Generation.id, Generation.text).where(col(Generation.id).in_(bindparam("generation_ids", expanding=True))),
)


def texts(session: Session, *, prompt_id: int, generation_ids: Sequence[int]) -> dict[int | None, str]:
    """An item's texts in one query: the prompt under None, each response under its id."""
    return dict(_run(session, _TEXTS, {"prompt_id": prompt_id, "generation_ids": list(generation_ids)}).all())
