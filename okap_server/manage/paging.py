"""Cursor paging: a ``data`` list and an opaque ``next`` cursor (stable under inserts).

The cursor encodes the (created_at, id) of the last row given, so the next page starts
strictly after it in the newest-first order, whatever was added meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from okap_server.clock import isoformat_z

MAX_PAGE = 200
DEFAULT_PAGE = 50


class BadCursor(ValueError):
    """The cursor is not one this vault gave."""


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, _, row_id = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        return datetime.fromisoformat(stamp), row_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor("cursor: not a cursor this vault gave") from None


def aware(value: datetime) -> datetime:
    """UTC-aware, as the columns (``UTCDateTime``) bind and return them."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def stamp(value: datetime | None) -> str | None:
    return isoformat_z(value) if value is not None else None
