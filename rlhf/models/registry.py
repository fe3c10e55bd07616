"""Model versions and their artifacts: lineage, status, and which one is live.

A version is `ready` only once its artifact is whole on disk: `publish_version`
writes into a temp folder and renames it, and records the version after the
rename. Callers own the transaction (`storage.db.session_scope`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import case, update
from sqlmodel import Session, col, select

from storage.crud import StoreError
from storage.db import database_url, sqlite_path
from storage.files import folder_digests, save_atomically
from storage.models import LiveChange, ModelVersion, VersionKind, VersionStatus

HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def artifacts_root(url: str | None = None) -> Path:
    """`$RLHF_ARTIFACTS`, else `artifacts/` next to the SQLite file, else `./artifacts`."""
    if os.environ.get("RLHF_ARTIFACTS"):
        return Path(os.environ["RLHF_ARTIFACTS"])
    db_file = sqlite_path(database_url(url))
    if db_file is not None:
        return db_file.parent / "artifacts"
    return Path("artifacts")


def get_version(session: Session, *, name: str) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.name == name)).first()


def require_version(session: Session, *, name: str) -> ModelVersion:
    version = get_version(session, name=name)
    if version is None:
        raise StoreError(f"model: no version named {name!r} (see `rlhf model list`)")
    return version


def live_version(session: Session) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(col(ModelVersion.is_live).is_(True))).first()


def local_artifact(artifact_path: str) -> Path | None:
    """The folder behind a version's artifact path, or None for a hub id (which has no files here to check)."""
    looks_local = Path(artifact_path).is_absolute() or artifact_path.startswith((".", "~"))
    return Path(artifact_path).expanduser() if looks_local else None


def _check_new_version(session: Session, *, name: str, kind: str, parent_id: int | None) -> None:
    if not name or not name.strip() or "/" in name or name.startswith("."):
        raise StoreError(f"name: {name!r} must be non-empty, without '/' and not start with '.'")
    if kind not in {k.value for k in VersionKind}:
        raise StoreError(f"kind: {kind!r} is not one of {', '.join(k.value for k in VersionKind)}")
    if get_version(session, name=name) is not None:
        raise StoreError(f"name: a version named {name!r} already exists")
    if parent_id is not None and session.get(ModelVersion, parent_id) is None:
        raise StoreError(f"parent: no version with id {parent_id}")


def register_version(
    session: Session,
    *,
    name: str,
    base_model: str,
    kind: str = VersionKind.base.value,
    artifact_path: str,
    is_adapter: bool = False,
    parent_id: int | None = None,
    round_id: int | None = None,
    data_snapshot: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    make_live: bool = False,
    status: str = VersionStatus.ready.value,
) -> ModelVersion:
    """Record a version whose artifact already exists (a hub id or a local folder); nothing is copied.

    A ready local folder's files are hashed now, so `rlhf db check` can tell when one is later damaged or deleted.
    """
    _check_new_version(session, name=name, kind=kind, parent_id=parent_id)
    folder = local_artifact(str(artifact_path))
    ready = status == VersionStatus.ready.value and folder is not None and folder.is_dir()
    version = ModelVersion(
        name=name,
        base_model=str(base_model),
        kind=kind,
        artifact_path=str(artifact_path),
        is_adapter=is_adapter,
        parent_id=parent_id,
        round_id=round_id,
        data_snapshot=data_snapshot or {},
        config=config or {},
        metrics=metrics or {},
        status=status,
        artifact_digests=folder_digests(folder) if ready and folder is not None else None,
    )
    session.add(version)
    session.flush()
    if make_live:
        set_live(session, name=name, by="registered live")
    return version


def publish_version(
    session: Session,
    *,
    name: str,
    write: Callable[[Path], object],
    root: Path,
    base_model: str,
    kind: str,
    is_adapter: bool,
    parent_id: int | None = None,
    round_id: int | None = None,
    data_snapshot: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    make_live: bool = False,
) -> ModelVersion:
    """Write a new artifact with `write(tmp_dir)`, rename it to `root/name`, then record the version as ready.

    If `write` raises, the temp folder is removed, a `failed` version (pointing at a folder that
    does not exist) is added to the session, and the error propagates: it survives only if the
    caller commits.
    """
    _check_new_version(session, name=name, kind=kind, parent_id=parent_id)
    target = Path(root).resolve() / name
    if target.exists():
        raise FileExistsError(f"{target}: already exists but no version records it; move it away first")
    fields: dict[str, Any] = dict(
        name=name,
        base_model=base_model,
        kind=kind,
        artifact_path=str(target),
        is_adapter=is_adapter,
        parent_id=parent_id,
        round_id=round_id,
        data_snapshot=data_snapshot,
        config=config,
        metrics=metrics,
    )
    try:
        save_atomically(target, write)
    except Exception as error:
        fields["metrics"] = {**(metrics or {}), "error": f"{type(error).__name__}: {error}"}
        register_version(session, **fields, status=VersionStatus.failed.value)
        raise
    return register_version(session, **fields, make_live=make_live)


def set_live(session: Session, *, name: str, by: str | None = None) -> ModelVersion:
    """Make `name` the one live version; a single UPDATE flips every row, so there is never zero-or-two mid-way.

    A change is recorded in `LiveChange` (who, when), so monitoring knows each version's live periods.
    """
    version = require_version(session, name=name)
    if version.kind == VersionKind.reward.value:
        raise StoreError(f"model: {name!r} is a reward model: it scores responses, only a policy can be live")
    if version.status != VersionStatus.ready.value:
        raise StoreError(f"model: {name!r} is {version.status}, only a ready version can be live")
    if not version.is_live:
        assert version.id is not None  # a stored version
        session.add(LiveChange(version_id=version.id, changed_by=by))
    session.flush()
    session.exec(
        update(ModelVersion)
        .values(is_live=case((col(ModelVersion.id) == version.id, True), else_=False))
        .execution_options(synchronize_session=False)
    )
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, ModelVersion):
            session.refresh(loaded, ["is_live"])
    return version


@dataclass(frozen=True)
class LivePeriod:
    version_id: int
    start: datetime
    end: datetime | None  # None: still live
    set_by: str | None


def reward_model_of(session: Session, version: ModelVersion | None) -> ModelVersion | None:
    """The ready reward model of the round that made `version`, else of its nearest ancestor's round."""
    seen = set()
    while version is not None and version.id not in seen:
        seen.add(version.id)
        if version.round_id is not None:
            reward = session.exec(
                select(ModelVersion).where(
                    ModelVersion.kind == VersionKind.reward.value,
                    ModelVersion.round_id == version.round_id,
                    ModelVersion.status == VersionStatus.ready.value,
                )
            ).first()
            if reward is not None:
                return reward
        version = session.get(ModelVersion, version.parent_id) if version.parent_id else None
    return None


def live_periods(session: Session) -> list[LivePeriod]:
    """When each version was live, oldest first, from the recorded changes."""
    changes = session.exec(select(LiveChange).order_by(col(LiveChange.changed_at), col(LiveChange.id))).all()
    return [
        LivePeriod(
            version_id=change.version_id,
            start=change.changed_at,
            end=changes[i + 1].changed_at if i + 1 < len(changes) else None,
            set_by=change.changed_by,
        )
        for i, change in enumerate(changes)
    ]


def retire(session: Session, *, name: str) -> ModelVersion:
    version = require_version(session, name=name)
    if version.is_live:
        raise StoreError(f"model: {name!r} is live; set another version live before retiring it")
    version.status = VersionStatus.retired.value
    session.flush()
    return version


def lineage(session: Session) -> list[tuple[int, ModelVersion]]:
    """Every version as (depth, version), parents before their children, siblings oldest first."""
    versions = session.exec(select(ModelVersion).order_by(col(ModelVersion.id))).all()
    known = {v.id for v in versions}
    children: dict[int | None, list[ModelVersion]] = {}
    for version in versions:
        parent = version.parent_id if version.parent_id in known else None
        children.setdefault(parent, []).append(version)
    ordered: list[tuple[int, ModelVersion]] = []
    stack = [(0, v) for v in reversed(children.get(None, []))]
    while stack:
        depth, version = stack.pop()
        ordered.append((depth, version))
        stack.extend((depth + 1, child) for child in reversed(children.get(version.id, [])))
    return ordered


def lineage_text(session: Session) -> str:
    """The lineage as an indented tree, one version a line, marked LIVE / ready / failed / retired."""
    lines = []
    for depth, version in lineage(session):
        branch = "  " * (depth - 1) + "└─ " if depth else ""
        kind = version.kind + (", adapter" if version.is_adapter else "")
        marks = ["LIVE"] if version.is_live else []
        marks.append(version.status)
        note = f"  ({version.config['note']})" if version.config.get("note") else ""
        lines.append(f"{branch}{version.name} [{kind}] {' '.join(marks)}  {version.artifact_path}{note}")
    return "\n".join(lines)


def root_version(session: Session, version: ModelVersion) -> ModelVersion:
    """The first version of `version`'s lineage (itself when it has no parent)."""
    seen = {version.id}
    while version.parent_id is not None and version.parent_id not in seen:
        seen.add(version.parent_id)
        version = session.get_one(ModelVersion, version.parent_id)  # the foreign key keeps parents
    return version


def root_base_model(version: ModelVersion) -> str:
    """The full model a version's adapter applies to (or, for a full model, the model itself)."""
    return version.base_model if version.is_adapter else version.artifact_path


def register_artifact(
    session: Session,
    *,
    source: str,
    name: str,
    kind: str = VersionKind.base.value,
    parent: str | None = None,
    make_live: bool = False,
) -> ModelVersion:
    """Register a local model/adapter folder or a hub id, checking what can be checked without a download.

    A local adapter applies to its parent's root model, else to the base named in its adapter_config.json.
    """
    parent_version = get_version(session, name=parent) if parent else None
    if parent and parent_version is None:
        raise StoreError(f"parent: no version named {parent!r} (see `rlhf model list`)")
    path = Path(source).expanduser()
    if not path.exists() and not source.startswith((".", "/", "~")):
        if not HUB_ID.fullmatch(source):
            raise StoreError(f"model: {source!r} is neither an existing folder nor a hub id like 'org/name'")
        return register_version(
            session,
            name=name,
            base_model=source,
            kind=kind,
            artifact_path=source,
            parent_id=parent_version.id if parent_version else None,
            make_live=make_live,
        )
    if not path.is_dir():
        raise StoreError(f"model: {path} does not exist or is not a folder")
    path = path.resolve()
    if (path / "adapter_config.json").is_file():
        if parent_version is not None:
            base_model = root_base_model(parent_version)
        else:
            base_model = _adapter_base(path)
        return register_version(
            session,
            name=name,
            base_model=base_model,
            kind=kind,
            artifact_path=str(path),
            is_adapter=True,
            parent_id=parent_version.id if parent_version else None,
            make_live=make_live,
        )
    if not (path / "config.json").is_file():
        raise StoreError(
            f"model: {path} has neither config.json nor adapter_config.json; is it a Hugging Face model folder?"
        )
    return register_version(
        session,
        name=name,
        base_model=str(path),
        kind=kind,
        artifact_path=str(path),
        parent_id=parent_version.id if parent_version else None,
        make_live=make_live,
    )


def _adapter_base(path: Path) -> str:
    config_file = path / "adapter_config.json"
    try:
        base = json.loads(config_file.read_text())["base_model_name_or_path"]
    except (ValueError, KeyError) as error:
        raise StoreError(f"{config_file}: cannot read base_model_name_or_path ({error}); give --parent") from error
    if not base:
        raise StoreError(f"{config_file}: base_model_name_or_path is empty; give --parent")
    return base
