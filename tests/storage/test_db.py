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
