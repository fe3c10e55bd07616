import sqlite3
import threading

import pytest

from rlhf.cli import main
from storage import crud
from storage.backup import backup, restore, sqlite_integrity
from storage.crud import StoreError
from storage.db import session_scope, sqlite_path


def add_judgments(url, start, count):
    with session_scope(url) as session:
        user = crud.get_user(session, username="u") or crud.create_user(session, username="u")
        prompt, _ = crud.add_prompt(session, text="P")
        a = crud.get_or_create_generation(session, prompt_id=prompt.id, text="A")
        b = crud.get_or_create_generation(session, prompt_id=prompt.id, text="B")
        ids = (user.id, prompt.id, [a.id, b.id])
    for i in range(start, start + count):
        with session_scope(url) as session:
            crud.add_judgment(
                session,
                kind="pairwise",
                user_id=ids[0],
                prompt_id=ids[1],
                generation_ids=ids[2],
                payload={"choice": "a"},
                client_key=f"k{i}",
            )


def count(path):
    connection = sqlite3.connect(path)
    try:
        return connection.execute("select count(*) from judgment").fetchone()[0]
    finally:
        connection.close()


def test_backup_while_writers_are_active_then_restore(sqlite_url, tmp_path, capsys):
    add_judgments(sqlite_url, 0, 50)
    writer = threading.Thread(target=add_judgments, args=(sqlite_url, 1000, 400))
    writer.start()
    out = tmp_path / "backups" / "store.bak"
    assert main(["db", "backup", str(out), "--db", sqlite_url]) == 0
    writer.join()
    assert "integrity check passed" in capsys.readouterr().out
    assert sqlite_integrity(out) == []
    snapshot = count(out)
    assert 50 <= snapshot <= 450
    assert count(sqlite_path(sqlite_url)) == 450

    assert main(["db", "restore", str(out), "--db", sqlite_url]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main(["db", "restore", str(out), "--yes", "--db", sqlite_url]) == 0
    assert count(sqlite_path(sqlite_url)) == snapshot
    add_judgments(sqlite_url, 5000, 1)
    assert count(sqlite_path(sqlite_url)) == snapshot + 1


def test_backup_refuses_to_overwrite_and_damaged_backups_are_not_restored(sqlite_url, tmp_path):
    out = tmp_path / "b.db"
    backup(out, url=sqlite_url)
    with pytest.raises(FileExistsError):
        backup(out, url=sqlite_url)
    damaged = tmp_path / "damaged.db"
    data = bytearray(out.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    damaged.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="integrity check"):
        restore(damaged, url=sqlite_url)
    assert sqlite_integrity(sqlite_path(sqlite_url)) == []
