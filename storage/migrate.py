"""Create or upgrade a store to the newest schema with Alembic."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.db import database_url, get_engine, sqlite_path

MIGRATIONS = Path(__file__).parent / "migrations"

OPTUNA_TABLES = frozenset(
    {
        "studies",
        "study_directions",
        "study_user_attributes",
        "study_system_attributes",
        "trials",
        "trial_user_attributes",
        "trial_system_attributes",
        "trial_params",
        "trial_values",
        "trial_intermediate_values",
        "trial_heartbeats",
        "version_info",
    }
)
"""The tables Optuna's RDBStorage creates in the store for `rlhf sweep`'s studies. Optuna owns their schema;
our migrations and autogenerate leave them alone. They share `alembic_version` with us: Optuna only stamps it
when it is empty, and a sweep refuses a store that is not at our head revision, so ours is always there."""


def include_name(name: str | None, type_: str, _parent_names) -> bool:
    """Alembic's filter: every object but Optuna's tables."""
    return not (type_ == "table" and name in OPTUNA_TABLES)


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def upgrade(url: str | None = None) -> str:
    """Bring the store at `url` to the head revision and return that revision."""
    url = database_url(url)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    config = alembic_config(url)
    with get_engine(url).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return head_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # storage/migrations/versions has revisions
    return head


def current_revision(url: str | None = None) -> str | None:
    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
