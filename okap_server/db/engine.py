"""Database engine construction for SQLite (embedded default) and PostgreSQL (team vaults)."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import create_engine

SQLITE_BUSY_TIMEOUT_MS = 5000
POOL_TIMEOUT_SECONDS = 10
# libpq connection parameters (psycopg passes them through).
POSTGRES_CONNECT_ARGS: Mapping[str, int] = MappingProxyType(
    {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
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
    # pooled connections, connects give up after a few seconds, keepalives find half-open
    # sockets, and a request waits a bounded time for a pooled connection. Query parameters
    # in the URL (e.g. ``?connect_timeout=20``) win over these defaults.
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
