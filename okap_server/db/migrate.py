"""Schema migrations with Alembic, applied at start and by ``okap-server migrate``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from okap_server.db.engine import without_session_timeouts

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


# Any constant: replicas starting together take turns migrating (PostgreSQL advisory lock).
MIGRATION_LOCK_ID = 0x6F6B6170


def upgrade(engine: Engine) -> None:
    """Apply every pending migration in one transaction; processes that start at the same
    time migrate one after the other (a PostgreSQL advisory lock, SQLite's write lock)."""
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            without_session_timeouts(connection, local=True)  # a migration may take long
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        elif connection.dialect.name == "sqlite":
            # pysqlite runs DDL outside any transaction unless one is open: open it, and take
            # the write lock first, so the schema changes all or nothing, one process at a time.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def autogenerate(engine: Engine, message: str) -> None:
    """Developer helper: write a new revision from the difference between tables and database."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
