from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from storage.db import get_engine
from storage.migrate import current_revision, head_revision, upgrade


def test_migrations_match_the_models(db_url):
    with get_engine(db_url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_upgrade_is_idempotent(db_url):
    assert current_revision(db_url) == head_revision()
    assert upgrade(db_url) == head_revision()
    assert current_revision(db_url) == head_revision()
