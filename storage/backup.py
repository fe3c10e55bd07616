"""Online backups of a SQLite store, and restoring one.

SQLite's backup API copies a consistent snapshot while writers keep working;
the copy is checked and renamed into place, so a backup file is whole or absent.
PostgreSQL stores are backed up with the server's own tools (pg_dump).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.crud import StoreError
from storage.db import database_url, dispose_engines, sqlite_path
from storage.files import save_atomically

_PAGES_PER_STEP = 1024


def _require_sqlite(url: str | None) -> Path:
    url = database_url(url)
    path = sqlite_path(url)
    if path is None:
        raise StoreError(f"db: {url.split('@')[-1]} is not a SQLite file; back PostgreSQL up with pg_dump")
    return path


def sqlite_integrity(path: Path) -> list[str]:
    """Problems SQLite itself finds in a database file (empty list: healthy)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in connection.execute("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [
            f"foreign key: {table} row {rowid} → {parent}"
            for table, rowid, parent, _ in connection.execute("PRAGMA foreign_key_check")
        ]
        return problems
    except sqlite3.DatabaseError as error:
        return [str(error)]  # e.g. "database disk image is malformed": SQLite cannot even read the pages
    finally:
        connection.close()


def backup(out: str | Path, *, url: str | None = None) -> Path:
    """Copy the live store to `out` (which must not exist) while other processes keep writing."""
    source_path = _require_sqlite(url)
    if not source_path.exists():
        raise StoreError(f"db: {source_path} does not exist")
    out = Path(out)

    def copy(partial: Path) -> None:
        source = sqlite3.connect(source_path, timeout=30)
        target = sqlite3.connect(partial)
        try:
            source.backup(target, pages=_PAGES_PER_STEP)
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
            source.close()
        problems = sqlite_integrity(partial)
        if problems:
            raise StoreError(f"{out}: the copy failed its integrity check: {'; '.join(problems[:5])}")

    return save_atomically(out, copy, folder=False)


def restore(backup_file: str | Path, *, url: str | None = None) -> Path:
    """Replace the store's contents with a checked backup (stop the app and rounds first)."""
    backup_file = Path(backup_file)
    if not backup_file.exists():
        raise StoreError(f"{backup_file}: no such backup file")
    problems = sqlite_integrity(backup_file)
    if problems:
        raise StoreError(f"{backup_file}: fails its integrity check, not restored: {'; '.join(problems[:5])}")
    target_path = _require_sqlite(url)
    dispose_engines()
    source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    target = sqlite3.connect(target_path, timeout=30)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return target_path
