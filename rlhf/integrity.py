"""Is the store consistent? The checks run after a crash and by `rlhf db check`.

SQLite's own integrity and foreign-key checks, plus the invariants the loop
relies on: every ready version's artifact exists, at most one version is live,
and no round is left "running" by a process that is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import col, select

from storage.backup import sqlite_integrity
from storage.db import database_url, session_scope, sqlite_path
from storage.models import ModelVersion, Round, RoundStatus, VersionStatus


@dataclass
class IntegrityReport:
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _artifact_missing(version: ModelVersion) -> bool:
    path = Path(version.artifact_path)
    looks_local = path.is_absolute() or version.artifact_path.startswith(".")
    return looks_local and not path.exists()


def check_store(url: str | None = None, *, repair: bool = True) -> IntegrityReport:
    """Problems found; with `repair`, rounds whose process died are marked failed first (as `round list` does)."""
    from rlhf.jobs.runner import reap_dead_rounds

    url = database_url(url)
    report = IntegrityReport()
    path = sqlite_path(url)
    if path is not None:
        report.problems += sqlite_integrity(path)
    with session_scope(url) as session:
        if repair:
            report.repaired += [f"round {row.id}: marked failed ({row.error})" for row in reap_dead_rounds(session)]
        for version in session.exec(select(ModelVersion).where(ModelVersion.status == VersionStatus.ready.value)):
            if _artifact_missing(version):
                report.problems.append(
                    f"version {version.name}: ready but its artifact {version.artifact_path} is missing"
                )
        live = session.exec(select(ModelVersion.name).where(col(ModelVersion.is_live).is_(True))).all()
        if len(live) > 1:
            report.problems.append(f"versions {', '.join(live)} are all marked live")
        from rlhf.jobs.runner import process_alive

        for row in session.exec(select(Round).where(Round.status == RoundStatus.running.value)):
            if row.pid is None or not process_alive(row.pid):
                report.problems.append(f"round {row.id}: marked running but no process is running it")
    return report
