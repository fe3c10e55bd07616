"""The feedback store's tables.

Every judgment is kept raw (who, what was shown, in which order, how long it
took); aggregation happens at export time so a new rule can re-read old data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any, overload

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def aware(moment: datetime) -> datetime: ...
@overload
def aware(moment: None) -> None: ...
def aware(moment: datetime | None) -> datetime | None:
    """`moment` in UTC if it has no zone: SQLite returns the UTC times it stores without one."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


PAIR_CHOICES = ("a", "b", "tie", "both_bad")
"""A pairwise judgment or blind vote: the first response wins, the second wins, equally good, both unacceptable."""
NO_PREFERENCE_LABELS = {"tie": "Tie", "both_bad": "Both bad"}
"""What the app's buttons call the two choices that favour neither side (the sides' labels depend on the tab)."""


class Role(str, Enum):
    annotator = "annotator"
    reviewer = "reviewer"
    engineer = "engineer"
    admin = "admin"


class VersionKind(str, Enum):
    base = "base"
    sft = "sft"
    reward = "reward"
    dpo = "dpo"
    kto = "kto"
    grpo = "grpo"
    rloo = "rloo"
    distill = "distill"


class VersionStatus(str, Enum):
    pending = "pending"
    ready = "ready"
    failed = "failed"
    retired = "retired"


class JudgmentKind(str, Enum):
    rating = "rating"
    pairwise = "pairwise"
    ranking = "ranking"
    correction = "correction"
    skip = "skip"


class RoundStatus(str, Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=128)
    password_hash: str | None = Field(default=None, max_length=256)
    role: str = Field(default=Role.annotator.value, max_length=16)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)


class Prompt(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str = Field(index=True, unique=True, max_length=64)
    source: str | None = Field(default=None, max_length=512)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    messages: list[dict[str, str]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )  # a multi-turn prompt's turns ({role, content}, the last a user's); `text` is then their flattened form


class Round(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    config_path: str | None = Field(default=None, max_length=1024)
    config_yaml: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=RoundStatus.queued.value, index=True, max_length=16)
    stage: str | None = Field(default=None, max_length=32)
    progress: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    completed_stages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    data_snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    parent_version_id: int | None = Field(default=None, foreign_key="modelversion.id")
    output_version_id: int | None = Field(default=None, foreign_key="modelversion.id")
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    work_dir: str | None = Field(default=None, max_length=1024)
    log_path: str | None = Field(default=None, max_length=1024)
    pid: int | None = Field(default=None)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ModelVersion(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=128)
    parent_id: int | None = Field(default=None, foreign_key="modelversion.id")
    base_model: str = Field(max_length=1024)
    kind: str = Field(default=VersionKind.base.value, max_length=16)
    artifact_path: str = Field(max_length=1024)
    is_adapter: bool = Field(default=False)
    round_id: int | None = Field(default=None, index=True)  # no FK: round and version point at each other
    data_snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=VersionStatus.pending.value, max_length=16)
    is_live: bool = Field(default=False, index=True)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    artifact_digests: dict[str, str] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )  # sha256 per file of a local artifact, at registration; None: a hub id, or registered before 0003


class LiveChange(SQLModel, table=True):
    """A version went live: `registry.set_live` appends one; its live period lasts until the next row."""

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="modelversion.id", index=True)
    changed_at: datetime = Field(default_factory=utcnow, index=True)
    changed_by: str | None = Field(default=None, max_length=128)


class Generation(SQLModel, table=True):
    """A response to a prompt: generated by a registered version, or imported (no version)."""

    id: int | None = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    model_version_id: int | None = Field(default=None, foreign_key="modelversion.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    text_hash: str = Field(index=True, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class AnnotationItem(SQLModel, table=True):
    """One unit of annotation work in the queue, shown to up to `overlap` different annotators."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True, max_length=16)
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    generation_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    overlap: int = Field(default=1)
    purpose: str = Field(default="train", max_length=16)
    gold_answer: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    priority: float = Field(default=0.0)
    judged_count: int = Field(default=0)  # distinct users who judged it (skips excluded); kept by storage.queue
    assigned_user_id: int | None = Field(default=None, foreign_key="user.id", index=True)  # a swap check's annotator
    source_judgment_id: int | None = Field(default=None, index=True)  # what a swap check repeats (no FK: a cycle)
    created_at: datetime = Field(default_factory=utcnow)


_item = AnnotationItem.__table__.c  # type: ignore[attr-defined]  # set by SQLAlchemy; SQLModel's stubs omit it
_item_open = _item.judged_count < _item.overlap
# Open items (fewer than `overlap` judges) in serving order, so serving stops at the first free one and
# counting a kind's open items reads only this index (hence judged_count and overlap at the end).
Index(
    "ix_annotationitem_open",
    _item.kind,
    _item.purpose,
    _item.priority.desc(),
    _item.id,
    _item.judged_count,
    _item.overlap,
    sqlite_where=_item_open,
    postgresql_where=_item_open,
)


class Judgment(SQLModel, table=True):
    """A single annotator's judgment, stored exactly as given.

    `generation_ids` are in canonical order for the kind: pairwise [a, b],
    ranking best→worst, rating and correction [the response]. `shown_order`
    is what the annotator saw left-to-right / top-to-bottom.
    """

    __table_args__ = (
        UniqueConstraint("client_key", name="uq_judgment_client_key"),
        Index("ix_judgment_user_id_item_id", "user_id", "item_id"),  # "has this user judged it"
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True, max_length=16)
    user_id: int = Field(foreign_key="user.id", index=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    item_id: int | None = Field(default=None, foreign_key="annotationitem.id", index=True)
    generation_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    shown_order: list[int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    duration_ms: int | None = None
    client_key: str = Field(max_length=128)
    source: str = Field(default="app", max_length=512)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class ItemClaim(SQLModel, table=True):
    """An annotator holding a queue item while they work on it, so no more than `overlap` people get it at once."""

    __table_args__ = (
        UniqueConstraint("item_id", "user_id", name="uq_itemclaim_item_user"),
        Index("ix_itemclaim_user_id_expires_at", "user_id", "expires_at"),
    )  # a user's live claims

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="annotationitem.id", index=True)
    user_id: int = Field(foreign_key="user.id")
    expires_at: datetime = Field(index=True)


class BlindVote(SQLModel, table=True):
    """A reviewer's blind A/B vote between two versions' responses; evaluation data, kept out of training exports."""

    __table_args__ = (UniqueConstraint("client_key", name="uq_blindvote_client_key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    prompt_id: int = Field(foreign_key="prompt.id")
    version_a_id: int = Field(foreign_key="modelversion.id")
    version_b_id: int = Field(foreign_key="modelversion.id")
    generation_a_id: int = Field(foreign_key="generation.id")
    generation_b_id: int = Field(foreign_key="generation.id")
    shown_order: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    choice: str = Field(max_length=16)
    client_key: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class ReviewDecision(str, Enum):
    accepted = "accepted"
    rejected = "rejected"


class JudgmentReview(SQLModel, table=True):
    """A reviewer's latest decision on one annotator judgment; a rejected judgment leaves every training export."""

    id: int | None = Field(default=None, primary_key=True)
    judgment_id: int = Field(foreign_key="judgment.id", unique=True, index=True)
    decision: str = Field(max_length=16)
    reviewer_id: int = Field(foreign_key="user.id", index=True)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    decided_at: datetime = Field(default_factory=utcnow)


class WithdrawnJudgment(SQLModel, table=True):
    """A judgment its annotator took back (undo) or replaced (edit), moved out of Judgment and kept whole.

    Every reader of Judgment (queue, exports, agreement, monitoring) then sees only judgments that
    stand; this table says who withdrew what, when, and which judgment replaced it.
    """

    id: int | None = Field(default=None, primary_key=True)
    judgment_id: int = Field(index=True)  # the Judgment row's id (no FK: that row is gone); SQLite may reuse it
    user_id: int = Field(foreign_key="user.id", index=True)
    item_id: int | None = Field(default=None, foreign_key="annotationitem.id")
    judgment: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    replaced_by_id: int | None = Field(default=None)  # the edit's new Judgment; None for an undo
    withdrawn_at: datetime = Field(default_factory=utcnow)


class Guideline(SQLModel, table=True):
    """An engineer's edit of one queue kind's task guidelines (Markdown); it wins over the app config's text."""

    kind: str = Field(primary_key=True, max_length=16)
    text: str = Field(sa_column=Column(Text, nullable=False))
    updated_by: str | None = Field(default=None, max_length=128)
    updated_at: datetime = Field(default_factory=utcnow)


class AdversarialPrompt(SQLModel, table=True):
    """A prompt in the adversarial set: written in the Red-team tab to break the model, or one whose response
    someone flagged as a failure. The next fill answers these first and rounds up-weight them."""

    prompt_id: int = Field(foreign_key="prompt.id", primary_key=True)
    origin: str = Field(max_length=16)  # "written" or "flagged": how it first entered the set
    added_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class FailureFlag(SQLModel, table=True):
    """One person's verdict that a response failed (unsafe, wrong, a refusal), with what they saw.

    `generation_id` is set when the response is a stored candidate; a response tried in the Red-team
    tab is not a candidate, so its text is kept here instead.
    """

    id: int | None = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    generation_id: int | None = Field(default=None, foreign_key="generation.id", index=True)
    model_version_id: int | None = Field(default=None, foreign_key="modelversion.id")
    response: str = Field(sa_column=Column(Text, nullable=False))
    category: str = Field(max_length=16)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
