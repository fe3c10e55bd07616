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

    with pytest.raises(IntegrityError):
        with session_scope(db_url) as session:
            session.add(Generation(prompt_id=12345, text="x", text_hash="h"))
