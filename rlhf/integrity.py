"""Is the store consistent? The checks run after a crash and by `rlhf db check`.

SQLite's own integrity and foreign-key checks, plus the invariants the loop
relies on: every ready version's artifact exists with the files it had when it
was registered (same sha256), at most one version is live, and no round is left
"running" by a process that is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import col, select

from rlhf.models.registry import local_artifact
from storage.backup import sqlite_integrity
from storage.db import database_url, session_scope, sqlite_path
from storage.files import changed_files
from storage.models import ModelVersion, Round, RoundStatus, VersionStatus


@dataclass
class IntegrityReport:
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _artifact_problems(version: ModelVersion) -> list[str]:
    folder = local_artifact(version.artifact_path)
    if folder is None:
        return []
    if not folder.exists():
        return [f"version {version.name}: ready but its artifact {version.artifact_path} is missing"]
    return [
        f"version {version.name}: {name} in its artifact {folder} is {what} since it was registered"
        + (" (sha256 differs)" if what == "changed" else "")
        for name, what in changed_files(folder, version.artifact_digests or {})
    ]


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
            report.problems += _artifact_problems(version)
        live = session.exec(select(ModelVersion.name).where(col(ModelVersion.is_live).is_(True))).all()
        if len(live) > 1:
            report.problems.append(f"versions {', '.join(live)} are all marked live")
        from rlhf.jobs.runner import process_alive

        for row in session.exec(select(Round).where(Round.status == RoundStatus.running.value)):
            if row.pid is None or not process_alive(row.pid):
                report.problems.append(f"round {row.id}: marked running but no process is running it")
    return report
