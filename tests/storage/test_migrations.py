from contextlib import contextmanager

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from storage.db import get_engine
from storage.migrate import current_revision, head_revision, upgrade


def test_migrations_match_the_models(db_url):
    with get_engine(db_url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


@contextmanager
def older_store(tmp_path, revision: str):
    """A SQLite store migrated only up to `revision`, and a connection to write its rows with."""
    from alembic import command

    from storage.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    with get_engine(url).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        yield url, connection


def test_upgrade_is_idempotent(db_url):
    assert current_revision(db_url) == head_revision()
    assert upgrade(db_url) == head_revision()
    assert current_revision(db_url) == head_revision()


def test_upgrading_an_older_store_records_its_live_version_as_live_since_created(tmp_path):
    from sqlalchemy import text

    with older_store(tmp_path, "0001") as (url, connection):
        for name, live in (("base", True), ("child", False)):
            connection.execute(
                text(
                    "INSERT INTO modelversion (name, base_model, kind, artifact_path, is_adapter, data_snapshot, config,"
                    " status, is_live, metrics, created_at) VALUES (:name, 'tiny', 'base', '/m', 0, '{}', '{}', 'ready',"
                    " :live, '{}', '2026-11-01 09:00:00.000000')"
                ),
                {"name": name, "live": live},
            )
    assert current_revision(url) == "0001"

    upgrade(url)
    with get_engine(url).connect() as connection:
        rows = connection.execute(
            text(
                "SELECT m.name, l.changed_at, l.changed_by FROM livechange l JOIN modelversion m ON m.id = l.version_id"
            )
        ).all()
    assert [(name, str(at)[:16], by) for name, at, by in rows] == [
        ("base", "2026-11-01 09:00", "before live history (0002)")
    ]


def test_versions_registered_before_0003_have_no_digests_and_still_check(tmp_path):
    from sqlalchemy import text

    from rlhf.integrity import check_store

    with older_store(tmp_path, "0002") as (url, connection):
        connection.execute(
            text(
                "INSERT INTO modelversion (name, base_model, kind, artifact_path, is_adapter, data_snapshot, config,"
                " status, is_live, metrics, created_at) VALUES ('old', 'tiny', 'base', :path, 0, '{}', '{}', 'ready',"
                " 1, '{}', '2026-11-01 09:00:00.000000')"
            ),
            {"path": str(tmp_path)},
        )
    upgrade(url)
    with get_engine(url).connect() as connection:
        assert connection.execute(text("SELECT artifact_digests FROM modelversion")).scalar() is None
    assert check_store(url).ok


def test_judgments_of_a_store_from_before_0004_are_unreviewed_and_export(tmp_path):
    from sqlalchemy import text

    from storage.db import session_scope
    from storage.export import ExportOptions, build_export

    with older_store(tmp_path, "0003") as (url, connection):
        connection.execute(
            text(
                "INSERT INTO user (username, role, is_active, created_at) VALUES ('u1', 'annotator', 1,"
                " '2026-11-01 09:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO prompt (text, content_hash, tags, created_at) VALUES ('P', 'h', '[]',"
                " '2026-11-01 09:00:00')"
            )
        )
        for i, answer in ((1, "A"), (2, "B")):
            connection.execute(
                text(
                    "INSERT INTO generation (prompt_id, text, text_hash, params, created_at) VALUES (1, :t, :h, '{}',"
                    " '2026-11-01 09:00:00')"
                ),
                {"t": answer, "h": f"h{i}"},
            )
        connection.execute(
            text(
                "INSERT INTO judgment (kind, user_id, prompt_id, generation_ids, payload, client_key, source, created_at)"
                " VALUES ('pairwise', 1, 1, '[1, 2]', '{\"choice\": \"a\"}', 'k1', 'app', '2026-11-01 09:00:00')"
            )
        )
    upgrade(url)
    with session_scope(url) as session:
        splits, manifest = build_export(session, ExportOptions(kind="preference", test_fraction=0.0))
    assert len(splits["train"]) == 1
    assert manifest["review"] == {"rejected_excluded": 0, "accepted": 0, "unreviewed": 1}


def test_upgrading_from_0004_adds_withdrawn_judgments_and_guidelines_and_keeps_reviewed_judgments(tmp_path):
    from sqlalchemy import inspect, text

    with older_store(tmp_path, "0004") as (url, connection):
        assert "withdrawnjudgment" not in inspect(connection).get_table_names()
        for statement in (
            "INSERT INTO user (username, role, is_active, created_at) VALUES ('u1', 'annotator', 1, '2026-11-01')",
            "INSERT INTO prompt (text, content_hash, tags, created_at) VALUES ('P', 'h', '[]', '2026-11-01')",
            "INSERT INTO judgment (kind, user_id, prompt_id, generation_ids, payload, client_key, source, created_at)"
            " VALUES ('rating', 1, 1, '[]', '{}', 'k1', 'app', '2026-11-01')",
            "INSERT INTO judgmentreview (judgment_id, decision, reviewer_id, decided_at)"
            " VALUES (1, 'accepted', 1, '2026-11-02')",
        ):
            connection.execute(text(statement))
    assert upgrade(url) == head_revision()
    with get_engine(url).connect() as connection:
        tables = inspect(connection).get_table_names()
        kept = connection.exec_driver_sql(
            "SELECT j.client_key FROM judgmentreview r JOIN judgment j ON j.id = r.judgment_id"
        )
        assert [row[0] for row in kept] == ["k1"]  # the rebuilt judgment table keeps its rows and their reviews
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    assert {"withdrawnjudgment", "guideline"} <= set(tables)


def test_upgrading_from_0005_adds_an_empty_adversarial_set_and_keeps_prompts(tmp_path):
    from sqlalchemy import inspect, text

    with older_store(tmp_path, "0005") as (url, connection):
        assert "adversarialprompt" not in inspect(connection).get_table_names()
        connection.execute(
            text("INSERT INTO prompt (text, content_hash, tags, created_at) VALUES ('P', 'h', '[]', '2026-11-01')")
        )
    assert upgrade(url) == head_revision() == "0006"
    with get_engine(url).connect() as connection:
        assert {"adversarialprompt", "failureflag"} <= set(inspect(connection).get_table_names())
        assert connection.exec_driver_sql("SELECT count(*) FROM adversarialprompt").scalar() == 0
        assert connection.exec_driver_sql("SELECT text FROM prompt").scalar() == "P"
