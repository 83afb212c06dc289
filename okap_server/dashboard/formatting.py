"""Numbers and times as people read them: "$3.20 of $10.00 this month", "expires in 12 days"."""

from __future__ import annotations

from datetime import UTC, datetime

PERIOD_WORDS = {
    "day": "today",
    "week": "this week",
    "month": "this month",
    "total": "in total",
}


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def usd(amount: float | None) -> str:
    """Dollars with cents; fractions of a cent show as "<$0.01" rather than "$0.00"."""
    if amount is None:
        return "no limit"
    if 0 < amount < 0.01:
        return "<$0.01"
    return f"${amount:,.2f}"


def usd_exact(micros: int) -> str:
    """A single request's cost, precise to the micro-dollar: ``$0.000042``."""
    amount = micros / 1_000_000
    if amount == 0 or amount >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.6f}".rstrip("0")


def plain_number(value: float | int | None) -> str:
    """A form value without a pointless ``.0``: 5.0 -> ``5``, 2.5 -> ``2.5``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def count(value: int | None) -> str:
    return "no limit" if value is None else f"{value:,}"


def spend_line(used: float, limit: float | None, period: str) -> str:
    """``$3.20 of $10.00 this month``; without a limit ``$3.20 this month (no limit)``."""
    words = PERIOD_WORDS.get(period, period)
    if limit is None:
        return f"{usd(used)} {words} (no limit)"
    return f"{usd(used)} of {usd(limit)} {words}"


def requests_line(used: int, limit: int | None, period: str = "day") -> str:
    noun = "request" if (used if limit is None else limit) == 1 else "requests"
    words = PERIOD_WORDS.get(period, period)
    if limit is None:
        return f"{used:,} {noun} {words} (no limit)"
    return f"{used:,} of {limit:,} {noun} {words}"


def percent(used: float, limit: float | None) -> int:
    """Bar fill, 0..100; a zero limit that is reached is full."""
    if limit is None:
        return 0
    if limit <= 0:
        return 100
    return max(0, min(100, round(100 * used / limit)))


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            amount = int(seconds // size)
            return f"{amount} {unit}{'' if amount == 1 else 's'}"
    return "less than a minute"


def ago(when: datetime | None, now: datetime) -> str:
    """``3 hours ago``; ``never`` for None."""
    if when is None:
        return "never"
    delta = (now - aware(when)).total_seconds()
    if delta < 60:
        return "just now"
    return f"{_span(delta)} ago"


def expiry(when: datetime | None, now: datetime, revoked: bool = False) -> str:
    """``expires in 12 days`` / ``expired 2 days ago`` / ``revoked``."""
    if revoked:
        return "revoked"
    if when is None:
        return "never expires"
    delta = (aware(when) - now).total_seconds()
    if delta <= 0:
        return f"expired {_span(delta)} ago"
    return f"expires in {_span(delta)}"


def timestamp(when: datetime | None) -> str:
    """``2026-11-23 17:40 UTC`` for tables and exports people read."""
    if when is None:
        return ""
    return aware(when).strftime("%Y-%m-%d %H:%M UTC")


def plural(count: float, word: str) -> str:
    """``1 request``, ``2 requests``, ``1,000 requests``: a whole count and its noun, agreeing."""
    whole = int(count)
    return f"{whole:,} {word}{'' if whole == 1 else 's'}"


# The noun a count limit counts, for ``plural``.
COUNT_NOUNS = {
    "requests_per_minute": "request",
    "requests_per_day": "request",
    "tokens_per_request": "token",
}


def limit_value(name: str, value: float | int | None) -> str:
    """A limit as a sentence fragment: ``$10.00 a month``, ``60 requests a minute``."""
    if value is None:
        return "none"
    labels = {
        "monthly_spend": "{} a month",
        "weekly_spend": "{} a week",
        "daily_spend": "{} a day",
        "total_spend": "{} in total",
        "requests_per_minute": "{} a minute",
        "requests_per_day": "{} a day",
        "tokens_per_request": "at most {} a request",
    }
    if name.endswith("_spend"):
        shown = usd(float(value))
    elif name in COUNT_NOUNS:
        shown = plural(value, COUNT_NOUNS[name])
    else:
        shown = f"{int(value):,}"
    return labels.get(name, "{}").format(shown)
