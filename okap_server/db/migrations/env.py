"""Alembic environment: runs against the connection handed in by ``okap_server.db.migrate``."""

from __future__ import annotations

from alembic import context

from okap_server.db.tables import metadata

config = context.config
connection = config.attributes.get("connection")


def run_migrations_online() -> None:
    if connection is None:
        raise RuntimeError("okap migrations run through okap_server.db.migrate.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
