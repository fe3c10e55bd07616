import pytest
from sqlalchemy import text

from rlhf.cli import main
from storage.db import database_url, dispose_engines, get_engine, sqlite_path
from storage.migrate import current_revision, head_revision


def test_init_creates_a_wal_sqlite_store(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'sub' / 'fresh.db'}"
    assert main(["init", "--db", url]) == 0
    assert "store ready" in capsys.readouterr().out
    assert sqlite_path(url).exists()
    assert current_revision(url) == head_revision()
    with get_engine(url).connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert main(["init", "--db", url]) == 0
    dispose_engines()


def test_url_comes_from_argument_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("RLHF_DB_URL", raising=False)
    assert database_url() == "sqlite:///rlhf.db"
    monkeypatch.setenv("RLHF_DB_URL", "postgresql+psycopg://u@h/db")
    assert database_url() == "postgresql+psycopg://u@h/db"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_foreign_keys_are_enforced(db_url):
    import pytest
    from sqlalchemy.exc import IntegrityError

    from storage.db import session_scope
    from storage.models import Generation

    with pytest.raises(IntegrityError), session_scope(db_url) as session:
        session.add(Generation(prompt_id=12345, text="x", text_hash="h"))


def _user_count(session) -> int:
    from sqlalchemy import func, select

    from storage.models import User

    return session.execute(select(func.count()).select_from(User)).scalar()


def test_a_long_read_does_not_hold_up_a_write(db_url):
    """A write commits while a read transaction stays open; the read keeps its snapshot."""
    import threading

    from storage import crud
    from storage.db import read_scope, session_scope

    committed = threading.Event()

    def write() -> None:
        with session_scope(db_url) as session:
            crud.create_user(session, username="while-reading")
        committed.set()

    with read_scope(db_url) as reading:
        before = _user_count(reading)
        writer = threading.Thread(target=write)
        writer.start()
        assert committed.wait(timeout=5), "the write waited for the read transaction"
        assert _user_count(reading) == before
    writer.join()
    with read_scope(db_url) as session:
        assert _user_count(session) == before + 1


def test_a_long_write_does_not_hold_up_a_read(db_url):
    import threading

    from storage import crud
    from storage.db import read_scope, session_scope

    counts = []

    def read() -> None:
        with read_scope(db_url) as session:
            counts.append(_user_count(session))

    with session_scope(db_url) as writing:
        crud.create_user(writing, username="uncommitted")
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(timeout=5)
        assert counts == [0], "the read waited for the write transaction or saw its uncommitted row"


def test_a_read_session_refuses_to_write(db_url):
    import pytest
    from sqlalchemy.exc import DBAPIError

    from storage import crud
    from storage.db import read_scope, session_scope

    with pytest.raises(DBAPIError, match="(?i)read-?only"), read_scope(db_url) as session:
        crud.create_user(session, username="sneaky")
        session.flush()
    with read_scope(db_url) as session:
        assert _user_count(session) == 0
    for name in ("first", "second"):  # the pooled connection the read used writes again
        with session_scope(db_url) as session:
            crud.create_user(session, username=name)
    with read_scope(db_url) as session:
        assert _user_count(session) == 2


def _read_only_url(url: str, how: str, tmp_path) -> str:
    """The same store, made read-only for real: chmod where that binds (not as root), else SQLite's mode=ro."""
    import os

    path = sqlite_path(url)
    if how == "chmod":
        dispose_engines()
        path.chmod(0o444)
        if os.access(path, os.W_OK):
            path.chmod(0o644)
            pytest.skip("chmod does not bind for this user (root)")
        return url
    return f"sqlite:///file:{path}?mode=ro&uri=true"


@pytest.mark.parametrize("how", ["chmod", "mode=ro"])
def test_a_write_to_a_read_only_store_is_one_line_without_sql(sqlite_url, tmp_path, how):
    from storage import crud
    from storage.crud import StoreError
    from storage.db import read_scope, session_scope

    with session_scope(sqlite_url) as session:
        crud.create_user(session, username="before")
    read_only = _read_only_url(sqlite_url, how, tmp_path)
    try:
        with pytest.raises(StoreError) as caught, session_scope(read_only) as session:
            crud.create_user(session, username="after", password="secret-password")
        message = str(caught.value)
        assert message == f"the store is read-only: {sqlite_path(sqlite_url)}; ask an admin to make it writable"
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        with read_scope(read_only) as session:
            assert [u.username for u in crud.list_users(session)] == ["before"]
    finally:
        dispose_engines()
        sqlite_path(sqlite_url).chmod(0o644)


def test_the_cli_reports_a_read_only_store_in_one_line(sqlite_url, tmp_path, capsys):
    read_only = _read_only_url(sqlite_url, "mode=ro", tmp_path)
    assert main(["users", "add", "alice", "--no-password", "--db", read_only]) == 2
    captured = capsys.readouterr()
    assert (
        captured.err
        == f"rlhf: error: the store is read-only: {sqlite_path(sqlite_url)}; ask an admin to make it writable\n"
    )
    assert "INSERT" not in captured.out + captured.err
    dispose_engines()


def test_sqlite_path_of_a_uri_url_is_the_file():
    assert str(sqlite_path("sqlite:///file:/data/store.db?mode=ro&uri=true")) == "/data/store.db"
    assert str(sqlite_path("sqlite:////data/store.db")) == "/data/store.db"


def test_a_store_whose_folder_is_gone_is_one_line_without_sql(tmp_path):
    from storage import crud
    from storage.crud import StoreError
    from storage.db import session_scope

    missing = tmp_path / "gone" / "store.db"
    expected = r"^the store cannot be opened for writing: .*gone/store.db \("
    with pytest.raises(StoreError, match=expected) as caught, session_scope(f"sqlite:///{missing}") as session:
        crud.create_user(session, username="x")
    assert "SQL" not in str(caught.value)
    assert not missing.parent.exists()
    dispose_engines()
