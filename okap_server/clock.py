"""Time and identifiers in one place. Every stored time is an aware UTC datetime."""

from __future__ import annotations

import os
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (SQLModel stores and returns these in UTC)."""
    return datetime.now(UTC)


def isoformat_z(value: datetime) -> str:
    """RFC 3339 with a trailing Z, as the protocol writes times."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(prefix: str = "") -> str:
    """A random, unguessable identifier for a row: 128 random bits in hex, as a UUID4's hex
    would be but without building a ``UUID`` (two are made for every proxied request)."""
    return prefix + os.urandom(16).hex()
