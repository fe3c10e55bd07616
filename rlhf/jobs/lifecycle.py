"""A round's life as a job: its row, work dir and version name, and the only code that moves its status.

queued → running | cancelled; running → succeeded | failed | cancelled; failed | cancelled → queued
(resume). succeeded is final. Every status write goes through `transition`, so a refused move is
an error naming the round, not a silently overwritten row.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from rlhf.models import registry
from storage.crud import StoreError
from storage.db import session_scope
from storage.models import ModelVersion, Round, RoundStatus, utcnow

if TYPE_CHECKING:
    from rlhf.training.config import RoundConfig

Q, R, S, F, C = (
    RoundStatus.queued.value,
    RoundStatus.running.value,
    RoundStatus.succeeded.value,
    RoundStatus.failed.value,
    RoundStatus.cancelled.value,
)
ALLOWED: dict[str, set[str]] = {Q: {R, C}, R: {S, F, C}, F: {Q}, C: {Q}, S: set()}
ACTIVE = (Q, R)


def transition(row: Round, to: str, **fields: Any) -> Round:
    """Move `row` to status `to` (setting `fields` with it), or raise if the move is not allowed."""
    if to not in ALLOWED.get(row.status, set()):
        raise StoreError(f"round {row.id}: cannot go from {row.status} to {to}")
    row.status = to
    for key, value in fields.items():
        setattr(row, key, value)
    return row


def round_dir(url: str | None, round_id: int) -> Path:
    return (registry.artifacts_root(url) / "rounds" / f"round-{round_id}").resolve()


def version_name(config: RoundConfig, round_id: int) -> str:
    return f"{config.name}-r{round_id}"


def reward_version_name(config: RoundConfig, round_id: int) -> str:
    return f"{version_name(config, round_id)}-rm"


def create_round(
    session: Session,
    *,
    config: RoundConfig,
    url: str | None,
    created_by: str | None = None,
    data_snapshot: dict | None = None,
) -> Round:
    """A queued Round row for `config`, with its parent resolved now (the config's, else the live version).

    `data_snapshot` pins the judgments it trains on (a sweep's trials share one); else the recipe takes one.
    """
    parent: ModelVersion | None
    if config.parent:
        parent = registry.require_version(session, name=config.parent)
    else:
        parent = registry.live_version(session)
        if parent is None:
            raise StoreError(
                f"{config.path}: parent: not set and no version is live "
                "(register one with `rlhf model register ... --live`)"
            )
    if parent.status != "ready":
        raise StoreError(f"{config.path}: parent: version {parent.name!r} is {parent.status}, not ready")
    refuse_if_parent_busy(session, parent)
    row = Round(
        config_path=config.path,
        config_yaml=config.text,
        parent_version_id=parent.id,
        created_by=created_by,
        status=Q,
        data_snapshot=data_snapshot or {},
    )
    session.add(row)
    session.flush()
    assert row.id is not None  # set by the flush
    row.work_dir = str(round_dir(url, row.id))
    row.log_path = str(Path(row.work_dir) / "log.jsonl")
    return row


def refuse_if_parent_busy(session: Session, parent: ModelVersion, except_round: int | None = None) -> None:
    """One active round per parent: two would both pass their gates and the later would silently replace the
    other as live. Checked inside the caller's write transaction (BEGIN IMMEDIATE), so two starts cannot race."""
    query = select(Round).where(Round.parent_version_id == parent.id, col(Round.status).in_(ACTIVE))
    busy = [row for row in session.exec(query.order_by(col(Round.id))).all() if row.id != except_round]
    if busy:
        raise StoreError(
            f"round {busy[0].id} is already {busy[0].status} on parent {parent.name!r}: "
            "wait for it to finish or cancel it before starting another round on that parent"
        )


def mark_ended(url: str, round_id: int, status: str, error: str | None) -> None:
    """Record how the round's process ended, unless `cancel` (or success) already did."""
    with session_scope(url) as session:
        row = session.get_one(Round, round_id)
        if row.status in (C, S):
            return
        if row.status == Q:
            transition(row, R)  # its process did start: it is the one reporting the end
        transition(row, status, error=error, finished_at=utcnow())
