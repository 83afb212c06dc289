"""The driver's own cursor under a SQLAlchemy connection, for the proxy's per-request SQL.

Every proxied request is admitted with three to five statements (``proxy/accounting/``).
Through SQLAlchemy's execution path each costs tens of microseconds of Python (cache key,
bind processors, result metadata) for statements that are fixed text; on the driver's
cursor they cost a few. The statements run on the connection of the SQLAlchemy transaction
they are part of, so they commit or roll back with it, and SQLAlchemy still owns the pool
and the transaction. A driver error comes out as SQLAlchemy's own (``DBAPIError``), with
its parameters hidden, and a lost connection is invalidated, as SQLAlchemy's execution
path would do.

One SQL text serves both back ends: written with ``:name`` placeholders (sqlite3's named
style), and turned once into ``%(name)s`` for psycopg (pyformat).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, StatementError

_NAMED = re.compile(r"(?<![:\w]):(\w+)")


class Sql:
    """A statement's text in both placeholder styles."""

    __slots__ = ("named", "pyformat")

    def __init__(self, text: str) -> None:
        self.named = text
        self.pyformat = _NAMED.sub(r"%(\1)s", text.replace("%", "%%"))

    def __repr__(self) -> str:
        return f"Sql({self.named!r})"


class Cursor:
    """Runs :class:`Sql` on the DB-API connection behind ``conn``, inside its transaction."""

    __slots__ = ("_conn", "_cursor", "_error", "_pyformat", "_sqlite")

    def __init__(self, conn: Connection) -> None:
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection is None:  # pragma: no cover (a closed connection)
            raise RuntimeError("the connection is closed")
        self._conn = conn
        self._error: type[Exception] = conn.dialect.loaded_dbapi.Error
        self._pyformat = conn.dialect.paramstyle == "pyformat"
        self._sqlite = conn.dialect.name == "sqlite"
        try:
            self._cursor: Any = dbapi_connection.cursor()
        except self._error as exc:
            raise self._translated(exc, "(cursor)", many=False) from exc

    def rows(self, sql: Sql, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run one statement; the rows it returns (RETURNING), or none."""
        cursor = self._cursor
        text = sql.pyformat if self._pyformat else sql.named
        try:
            cursor.execute(text, params)
            return list(cursor.fetchall()) if cursor.description is not None else []
        except self._error as exc:
            raise self._translated(exc, text, many=False) from exc

    def run_many(self, sql: Sql, params: Iterable[Mapping[str, Any]]) -> None:
        """Run one statement once per parameter set (no rows returned)."""
        batch = list(params)
        if not batch:
            return
        text = sql.pyformat if self._pyformat else sql.named
        try:
            self._cursor.executemany(text, batch)
        except self._error as exc:
            raise self._translated(exc, text, many=True) from exc

    def _translated(self, exc: Exception, statement: str, *, many: bool) -> StatementError:
        dialect = self._conn.dialect
        dbapi_connection = self._conn.connection.dbapi_connection
        cursor = getattr(self, "_cursor", None)
        if dialect.is_disconnect(exc, dbapi_connection, cursor):  # type: ignore[arg-type]
            self._conn.invalidate(exc)
        return DBAPIError.instance(
            statement, None, exc, self._error, hide_parameters=True, dialect=dialect, ismulti=many
        )

    def timestamp(self, value: datetime) -> Any:
        """A ``DateTime`` column's value as SQLAlchemy binds it: on SQLite the text it
        stores (so rows written here and through SQLAlchemy compare and sort alike), else
        the datetime itself."""
        if self._sqlite:
            return value.isoformat(" ", "microseconds")[:26]  # without its UTC offset
        return value

    def close(self) -> None:
        self._cursor.close()
