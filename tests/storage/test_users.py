import io

from sqlmodel import select

from rlhf.cli import main
from storage import crud
from storage.db import session_scope
from storage.models import User


def test_passwords_are_hashed_and_verified(db_url):
    with session_scope(db_url) as session:
        crud.create_user(session, username="eng", role="engineer", password="s3cret-pass")
    with session_scope(db_url) as session:
        user = session.exec(select(User)).one()
        assert "s3cret-pass" not in user.password_hash
        assert user.password_hash.startswith("$argon2")
        stored = crud.login_hash(session, username="eng")
        assert stored == user.password_hash and user.role == "engineer"
        assert crud.password_matches(stored, "s3cret-pass")
        assert not crud.password_matches(stored, "wrong")
        assert not crud.password_matches(None, "s3cret-pass")
        assert not crud.needs_rehash(stored)
        crud.deactivate_user(session, username="eng")
        assert crud.login_hash(session, username="eng") is None
        assert crud.login_hash(session, username="nobody") is None


def test_users_add_cli_reads_password_from_stdin(sqlite_url, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("pw-from-stdin\n"))
    assert main(["users", "add", "alice", "--role", "reviewer", "--password-stdin", "--db", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "alice" in out and "pw-from-stdin" not in out
    assert main(["users", "add", "alice", "--no-password", "--db", sqlite_url]) == 2
    assert "already exists" in capsys.readouterr().err
    with session_scope(sqlite_url) as session:
        assert crud.password_matches(crud.login_hash(session, username="alice"), "pw-from-stdin")
        assert crud.get_user(session, username="alice").role == "reviewer"
