"""The dialect's own statements where SQLAlchemy's core has none: ``INSERT ... ON
CONFLICT`` exists only in the PostgreSQL and SQLite dialects."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_for(conn: Connection, table: Any) -> Any:
    """The dialect's own ``INSERT`` (for ``ON CONFLICT``), SQLite's or PostgreSQL's."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)
