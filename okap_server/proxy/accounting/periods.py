"""Period keys: which counter row a request lands in. UTC throughout, so every worker and
replica agrees on where a day, an ISO week or a month ends."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta


# Formatted field by field: strftime costs about 8 µs a call, and these run on every request.
def day_key(now: datetime) -> str:
    return f"day:{now.year:04d}-{now.month:02d}-{now.day:02d}"


def week_key(now: datetime) -> str:
    """The ISO week (Monday to Sunday, UTC): ``week:2026-W49``; its year is the ISO year,
    so the days around New Year fall in the week they belong to."""
    year, week, _ = now.isocalendar()
    return f"week:{year:04d}-W{week:02d}"


def month_key(now: datetime) -> str:
    return f"month:{now.year:04d}-{now.month:02d}"


def next_midnight(now: datetime) -> datetime:
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


@functools.lru_cache(maxsize=4)
def windows_of(minute: int) -> tuple[str, datetime, str, datetime]:
    """A UTC minute's rate window (key, end) and its day's: the same for every request of
    that minute, so worked out once (the minute fixes the day)."""
    start = datetime.fromtimestamp(minute * 60, tz=UTC)
    return f"minute:{minute}", start + timedelta(minutes=1), day_key(start), next_midnight(start)


def split_periods(periods: str) -> Iterable[str]:
    """A reservation row's comma-separated periods."""
    return [p for p in periods.split(",") if p]


# A ceiling's counter row: ``grant_id`` is its scope, ``provider`` is ``*``.
CEILING_PROVIDER = "*"


def account_scope(account_id: str) -> str:
    return f"account:{account_id}"


def key_scope(key_id: str) -> str:
    return f"key:{key_id}"


def held_entry(grant_id: str, scope: str, period: str) -> str:
    """How a hold names its row in ``reserved_periods``: the grant's own period as is, a
    ceiling's or a delegating grant's as ``<scope>/<period>``."""
    return period if scope == grant_id else f"{scope}/{period}"


def is_ceiling_scope(scope: str) -> bool:
    return scope.startswith(("account:", "key:"))


def counter_of(grant_id: str, provider: str, entry: str) -> tuple[str, str, str]:
    """The counter row (scope, provider, period) a ``reserved_periods`` entry names: a
    ceiling's row has provider ``*``; an ancestor's is of the same provider."""
    scope, slash, period = entry.partition("/")
    if not slash:
        return grant_id, provider, entry
    return scope, CEILING_PROVIDER if is_ceiling_scope(scope) else provider, period
