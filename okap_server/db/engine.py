"""Database engine construction for SQLite (embedded default) and PostgreSQL (team vaults)."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import create_engine

SQLITE_BUSY_TIMEOUT_MS = 5000
POOL_TIMEOUT_SECONDS = 10
# Server-side bounds of every session: a statement waits at most 5 s for a row lock (one
# held by a replica that froze mid-transaction, say), runs at most 30 s, and a transaction
# left idle for a minute (its client is gone or frozen) is ended, releasing its locks.
# Long maintenance (migrations, start-up locks) lifts them for its own session.
POSTGRES_SESSION_OPTIONS = (
    "-c lock_timeout=5000 -c statement_timeout=30000 -c idle_in_transaction_session_timeout=60000"
)
# libpq connection parameters (psycopg passes them through). Connecting gives up after 5 s;
# a peer that stops acknowledging what was sent is dropped after 10 s (TCP user timeout,
# RFC 5482), and an idle one that stops answering keepalives after 10 + 3 x 5 s.
POSTGRES_CONNECT_ARGS: Mapping[str, int | str] = MappingProxyType(
    {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
        "options": POSTGRES_SESSION_OPTIONS,
    }
)


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for memory or another database."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def prepare_sqlite_file(path: Path) -> None:
    """Create the database file and its folder readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(0o600)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the pragmas the vault relies on: WAL, foreign keys, a busy timeout.

    Statement parameters are kept out of error messages (``hide_parameters``): they can hold
    ciphertexts, hashes or the values of a failed insert."""
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            prepare_sqlite_file(path)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A replica that loses its database must answer 503 soon, not hang: a pre-ping drops dead
    # pooled connections, connects give up after a few seconds, keepalives and the TCP user
    # timeout find half-open sockets, the server bounds lock waits and statements, and a
    # request waits a bounded time for a pooled connection. A database that accepts bytes
    # but never answers is bounded by the caller (``Settings.database_wait_seconds``).
    # Query parameters in the URL (e.g. ``?connect_timeout=20``) win over these defaults.
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_timeout", POOL_TIMEOUT_SECONDS)
    in_url = set(make_url(url).query)
    connect_args = dict(kwargs.pop("connect_args", {}))
    for name, value in POSTGRES_CONNECT_ARGS.items():
        if name not in in_url:
            connect_args.setdefault(name, value)
    return create_engine(url, connect_args=connect_args, **kwargs)


def without_session_timeouts(connection: Connection, *, local: bool = False) -> None:
    """Lift the server-side bounds (PostgreSQL) for migrations and the start-up lock, which
    may rightly wait or run longer: for this transaction (``local``), or this session until
    :func:`with_session_timeouts`."""
    if connection.dialect.name == "postgresql":
        scope = "SET LOCAL" if local else "SET"
        connection.exec_driver_sql(f"{scope} lock_timeout = 0")
        connection.exec_driver_sql(f"{scope} statement_timeout = 0")


def with_session_timeouts(connection: Connection) -> None:
    """The server-side bounds back, as the connection was opened with."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("RESET lock_timeout")
        connection.exec_driver_sql("RESET statement_timeout")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
