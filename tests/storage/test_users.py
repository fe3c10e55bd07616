import io

import pytest
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


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        ("alice", "x", "password: must be at least 8 characters"),
        ("alice", "", "password: must be at least 8 characters"),
        ("alice", "p" * 1025, "password: must be at most 1024 characters"),
        ("<b>bob</b>", "long-enough", "username: "),
        ("nul\x00name", "long-enough", "username: "),
        (".hidden", "long-enough", "username: "),
        ("a" * 65, "long-enough", "username: "),
        ("bob\n", None, "username: "),
        ("", None, "username: must not be empty"),
    ],
)
def test_weak_passwords_and_odd_usernames_are_refused(db_url, username, password, expected):
    with pytest.raises(crud.StoreError) as refused, session_scope(db_url) as session:
        crud.create_user(session, username=username, password=password)
    assert str(refused.value).startswith(expected) and "\n" not in str(refused.value)
    assert "\x00" not in str(refused.value)
    with session_scope(db_url) as session:
        assert crud.list_users(session) == []


def test_names_and_passwords_at_the_limits_are_accepted(db_url):
    with session_scope(db_url) as session:
        crud.create_user(session, username="a", password="8 chars!")
        crud.create_user(session, username="A1._-" + "z" * 59, password="p" * 1024)
        crud.create_user(session, username="no-login", password=None)
        assert len(crud.list_users(session)) == 3


def test_the_cli_refuses_a_short_password_in_one_line_and_sets_a_good_one(sqlite_url, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "add", "alice", "--password-stdin", "--db", sqlite_url]) == 2
    assert capsys.readouterr().err == "rlhf: error: password: must be at least 8 characters\n"
    assert main(["users", "add", "alice", "--no-password", "--db", sqlite_url]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("tiny\n"))
    assert main(["users", "set-password", "alice", "--password-stdin", "--db", sqlite_url]) == 2
    assert capsys.readouterr().err == "rlhf: error: password: must be at least 8 characters\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-good-password\n"))
    assert main(["users", "set-password", "alice", "--password-stdin", "--db", sqlite_url]) == 0
    with session_scope(sqlite_url) as session:
        assert crud.password_matches(crud.login_hash(session, username="alice"), "a-good-password")
