"""Rate windows and spend budgets, enforced with atomic SQL so they hold across processes.

Each rate window is counted with a conditional upsert (``INSERT ... ON CONFLICT DO UPDATE
... WHERE count < limit RETURNING``), then the worst-case cost is reserved on each limited
spend period with the same shape (``WHERE spent + reserved + amount <= limit``). If any
statement returns no row, what the request did count or hold is taken back in the same
transaction: a refusal counts and holds nothing (``admission.py`` runs many admissions in
one transaction, so a refusal cannot roll the transaction back). A ``Reservation`` row with
an expiry records the hold, so a crashed process cannot keep spend reserved for ever: the
sweeper charges a stale hold at its worst case (its outcome is unknown, so never $0) and
releases it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from okap_server.clock import new_id
from okap_server.db.cursor import Cursor, Sql
from okap_server.proxy.errors import BudgetExceeded, BudgetHeld, RateLimited
from okap_server.proxy.grants import Limits
from okap_server.proxy.models import RateCounter, Reservation, SpendCounter

RATE_TABLE: Any = RateCounter.__table__  # type: ignore[attr-defined]
SPEND_TABLE: Any = SpendCounter.__table__  # type: ignore[attr-defined]
RESERVATION: Any = Reservation.__table__  # type: ignore[attr-defined]
RATE = RATE_TABLE.c
SPEND = SPEND_TABLE.c
RELEASE_CHUNK = 256


def insert_for(conn: Connection, table: Any) -> Any:
    """The dialect's own ``INSERT`` (for ``ON CONFLICT``), SQLite's or PostgreSQL's."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# Written as SQL text, built once per shape: the same statement runs on SQLite (3.35+) and
# PostgreSQL, on the driver's cursor (``db/cursor.py``: these run on every request).
@functools.cache
def _rate_statement(windows: int) -> Sql:
    values = ", ".join(f"(:g, :p, :w{i}, CAST(:k AS BIGINT), :e{i})" for i in range(windows))
    limits = " ".join(f"WHEN :w{i} THEN CAST(:l{i} AS BIGINT)" for i in range(windows))
    return Sql(
        'INSERT INTO rate_counter (grant_id, provider, "window", count, expires_at) '  # noqa: S608
        f"VALUES {values} "
        'ON CONFLICT (grant_id, provider, "window") DO UPDATE SET '
        "count = rate_counter.count + CAST(:k AS BIGINT) "
        "WHERE rate_counter.count + CAST(:k AS BIGINT) "
        f'<= (CASE rate_counter."window" {limits} END) '
        'RETURNING "window", count'
    )


@functools.cache
def _hold_statement(periods: int) -> Sql:
    values = ", ".join(f"(:g, :p, :p{i}, 0, CAST(:a AS BIGINT), 0)" for i in range(periods))
    limits = " ".join(f"WHEN :p{i} THEN CAST(:l{i} AS BIGINT)" for i in range(periods))
    return Sql(
        "INSERT INTO spend_counter "  # noqa: S608 (only numbered placeholders go in)
        "(grant_id, provider, period, spent_micros, reserved_micros, requests) "
        f"VALUES {values} "
        "ON CONFLICT (grant_id, provider, period) DO UPDATE SET "
        "reserved_micros = spend_counter.reserved_micros + CAST(:a AS BIGINT) "
        "WHERE spend_counter.spent_micros + spend_counter.reserved_micros + CAST(:a AS BIGINT) "
        f"<= (CASE spend_counter.period {limits} END) "
        "RETURNING period"
    )


_RESERVE = Sql(
    "INSERT INTO reservation (id, grant_id, provider, amount_micros, periods, created_at, "
    "expires_at) VALUES (:id, :g, :p, :a, :periods, :created, :expires)"
)


_UNCOUNT = Sql(
    "UPDATE rate_counter SET count = count - CAST(:k AS BIGINT) "
    'WHERE grant_id = :g AND provider = :p AND "window" = :w'
)
_UNHOLD = Sql(
    "UPDATE spend_counter SET reserved_micros = reserved_micros - CAST(:a AS BIGINT) "
    "WHERE grant_id = :g AND provider = :p AND period = :period"
)


# Read only when a hold is refused, to tell a budget spent (final) from one held by
# requests in flight (retryable).
_SPENT = Sql(
    "SELECT spent_micros FROM spend_counter "
    "WHERE grant_id = :g AND provider = :p AND period = :period"
)
HELD_RETRY_SECONDS = 1

# Spend and requests never go below zero: a settlement is applied once (settlement.py), and
# were one ever applied twice, the limit must not be lifted by a negative spend.
_APPLY = Sql(
    "INSERT INTO spend_counter "
    "(grant_id, provider, period, spent_micros, reserved_micros, requests) "
    "VALUES (:g, :p, :period, :spent0, :reserved0, :n) "
    "ON CONFLICT (grant_id, provider, period) DO UPDATE SET "
    "spent_micros = CASE WHEN spend_counter.spent_micros + CAST(:spent AS BIGINT) < 0 "
    "THEN 0 ELSE spend_counter.spent_micros + CAST(:spent AS BIGINT) END, "
    "reserved_micros = CASE WHEN spend_counter.reserved_micros + CAST(:reserved AS BIGINT) < 0 "
    "THEN 0 ELSE spend_counter.reserved_micros + CAST(:reserved AS BIGINT) END, "
    "requests = CASE WHEN spend_counter.requests + CAST(:n AS BIGINT) < 0 "
    "THEN 0 ELSE spend_counter.requests + CAST(:n AS BIGINT) END"
)


@functools.cache
def _release_statement(ids: int) -> Sql:
    placeholders = ", ".join(f":i{i}" for i in range(ids))
    return Sql(f"DELETE FROM reservation WHERE id IN ({placeholders}) RETURNING id")  # noqa: S608


# Formatted field by field: strftime costs about 8 µs a call, and these run on every request.
def day_key(now: datetime) -> str:
    return f"day:{now.year:04d}-{now.month:02d}-{now.day:02d}"


def month_key(now: datetime) -> str:
    return f"month:{now.year:04d}-{now.month:02d}"


def _next_midnight(now: datetime) -> datetime:
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


@functools.lru_cache(maxsize=4)
def _windows_of(minute: int) -> tuple[str, datetime, str, datetime]:
    """A UTC minute's rate window (key, end) and its day's: the same for every request of
    that minute, so worked out once (the minute fixes the day)."""
    start = datetime.fromtimestamp(minute * 60, tz=UTC)
    return f"minute:{minute}", start + timedelta(minutes=1), day_key(start), _next_midnight(start)


@dataclass(frozen=True)
class SweptHold:
    """A hold the sweeper charged: a request whose outcome is unknown (its process died)."""

    reservation_id: str
    grant_id: str
    provider: str
    amount_micros: int
    created_at: datetime


@dataclass(frozen=True)
class RateState:
    """For ``X-RateLimit-*``: the tightest window after this request."""

    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(max(self.remaining, 0)),
            "x-ratelimit-reset": str(self.reset_seconds),
        }


class RateLimiter(Protocol):
    """Counts one request in each of a grant entry's windows, or refuses (RateLimited) with
    nothing counted; ``uncount`` takes a counted request back out."""

    def hit(
        self,
        cursor: Cursor,
        grant_id: str,
        provider: str,
        limits: Limits,
        now: datetime,
        requests: int = 1,
    ) -> Counted: ...

    def uncount(self, cursor: Cursor, grant_id: str, provider: str, counted: Counted) -> None: ...


@dataclass(frozen=True)
class Counted:
    """What one admission counted: ``requests`` in each of ``windows``, and the tightest
    window after the last of them, for the headers."""

    windows: tuple[str, ...] = ()
    tightest: RateState | None = None
    requests: int = 1
    after_last: tuple[RateState, ...] = ()

    def state_of(self, nth: int) -> RateState | None:
        """The tightest window as it stood after the ``nth`` (from 0) of the requests."""
        later = self.requests - 1 - nth
        states = [replace(s, remaining=s.remaining + later) for s in self.after_last]
        return min(states, key=lambda s: s.remaining) if states else None


class SqlRateLimiter:
    """Fixed windows in ``rate_counter``, one conditional upsert per window."""

    def hit(
        self,
        cursor: Cursor,
        grant_id: str,
        provider: str,
        limits: Limits,
        now: datetime,
        requests: int = 1,
    ) -> Counted:
        """Count ``requests`` in every window, all or none (RateLimited if any window lacks
        room for all of them)."""
        windows: list[tuple[str, int, datetime]] = []
        minute, minute_end, day, day_end = _windows_of(int(now.timestamp() // 60))
        if limits.requests_per_minute is not None:
            windows.append((minute, limits.requests_per_minute, minute_end))
        if limits.requests_per_day is not None:
            windows.append((day, limits.requests_per_day, day_end))
        if not windows:
            return Counted(requests=requests)
        # One statement for every window: a row is counted only while under its limit.
        params: dict[str, Any] = {"g": grant_id, "p": provider, "k": requests}
        for i, (window, limit, end) in enumerate(windows):
            params.update({f"w{i}": window, f"l{i}": limit, f"e{i}": cursor.timestamp(end)})
        rows = cursor.rows(_rate_statement(len(windows)), params)
        counted = {str(w): int(c) for w, c in rows}

        def reset_of(end: datetime) -> int:
            return max(int((end - now).total_seconds() + 0.999), 1)

        # A window's first row is inserted unchecked, so its count is compared here too.
        full = [(w, limit, end) for w, limit, end in windows if counted.get(w, limit + 1) > limit]
        if full:
            # Other windows may have counted these requests: take that back, so a refusal
            # counts nothing (admissions share one transaction, see admission.py).
            self.uncount(cursor, grant_id, provider, Counted(tuple(counted), None, requests))
            window, limit, end = full[0]
            kind = "minute" if window.startswith("minute") else "day"
            raise RateLimited(
                f"Rate limit reached: {limit} requests per {kind} for this grant.",
                headers={
                    "retry-after": str(reset_of(end)),
                    **RateState(limit, 0, reset_of(end)).headers(),
                },
            )
        states = tuple(
            RateState(limit, limit - counted[w], reset_of(end)) for w, limit, end in windows
        )
        return Counted(tuple(counted), min(states, key=lambda s: s.remaining), requests, states)

    def uncount(self, cursor: Cursor, grant_id: str, provider: str, counted: Counted) -> None:
        cursor.run_many(
            _UNCOUNT,
            [
                {"g": grant_id, "p": provider, "w": w, "k": counted.requests}
                for w in counted.windows
            ],
        )


class SqlBudget:
    """Spend counters in ``spend_counter`` and holds in ``reservation``."""

    def reserve(
        self,
        cursor: Cursor,
        grant_id: str,
        provider: str,
        limits: Limits,
        amount: int,
        now: datetime,
        ttl: timedelta,
    ) -> tuple[str, tuple[str, ...]]:
        """Hold ``amount`` on every limited spend period, and record the request in flight.

        The ``reservation`` row is written for every admitted request, limited in spend or
        not: it is the durable trace that the request may be answered, so if the process
        dies before recording it the sweeper still audits it (outcome unknown, charged at
        ``amount``, its worst case). Returns the row's id and the periods held against."""
        periods = self.hold(cursor, grant_id, provider, limits, amount, now)
        (reservation_id,) = self.record(cursor, grant_id, provider, [(amount, now)], periods, ttl)
        return reservation_id, periods

    def hold(
        self,
        cursor: Cursor,
        grant_id: str,
        provider: str,
        limits: Limits,
        amount: int,
        now: datetime,
    ) -> tuple[str, ...]:
        """Hold ``amount`` on every limited spend period of ``now``, all or none
        (BudgetExceeded); the periods held against."""
        # Sorted by period, the order settlement uses too: rows are always locked in one
        # order, so concurrent holds and settlements cannot deadlock on PostgreSQL.
        periods = sorted(
            (p, limit, label)
            for p, limit, label in (
                ("total", limits.total_spend, "total"),
                (day_key(now), limits.daily_spend, "daily"),
                (month_key(now), limits.monthly_spend, "monthly"),
            )
            if limit is not None
        )

        for _, limit, label in periods:
            if amount > limit:
                raise _spent_out(limit, label, amount)
        if not periods:
            return ()
        # One statement for every limited period: held only where it still fits.
        params: dict[str, Any] = {"g": grant_id, "p": provider, "a": amount}
        for i, (period, limit, _) in enumerate(periods):
            params.update({f"p{i}": period, f"l{i}": limit})
        held = {str(row[0]) for row in cursor.rows(_hold_statement(len(periods)), params)}
        for period, limit, label in periods:
            if period not in held:
                # take back the holds of the periods that had room
                cursor.run_many(
                    _UNHOLD,
                    [{"g": grant_id, "p": provider, "a": amount, "period": h} for h in held],
                )
                rows = cursor.rows(_SPENT, {"g": grant_id, "p": provider, "period": period})
                spent = int(rows[0][0]) if rows else 0
                if spent + amount > limit:
                    raise _spent_out(limit, label, amount)
                raise BudgetHeld(
                    f"The {label} spend limit of ${limit / 1e6:.2f} for this grant is held "
                    "by requests in flight (each holds its worst case until it settles); "
                    "retry in a moment.",
                    headers={"retry-after": str(HELD_RETRY_SECONDS), "x-should-retry": "true"},
                )
        return tuple(p for p, _, _ in periods)

    def unhold(
        self, cursor: Cursor, grant_id: str, provider: str, amount: int, periods: tuple[str, ...]
    ) -> None:
        cursor.run_many(
            _UNHOLD, [{"g": grant_id, "p": provider, "a": amount, "period": p} for p in periods]
        )

    def record(
        self,
        cursor: Cursor,
        grant_id: str,
        provider: str,
        requests: list[tuple[int, datetime]],
        periods: tuple[str, ...],
        ttl: timedelta,
    ) -> list[str]:
        """Record requests in flight, each ``(amount, now)``: one ``reservation`` row each."""
        ids = [new_id("rsv_") for _ in requests]
        joined = ",".join(periods)
        cursor.run_many(
            _RESERVE,
            [
                {
                    "id": rid,
                    "g": grant_id,
                    "p": provider,
                    "a": amount,
                    "periods": joined,
                    "created": cursor.timestamp(now),
                    "expires": cursor.timestamp(now + ttl),
                }
                for rid, (amount, now) in zip(ids, requests, strict=True)
            ],
        )
        return ids

    def apply(self, conn: Connection, deltas: dict[tuple[str, str, str], list[int]]) -> None:
        """Add ``[spent, reserved, requests]`` deltas to counters, creating rows as needed."""
        if not deltas:
            return
        Cursor(conn).run_many(
            _APPLY,
            [
                {
                    "g": g,
                    "p": p,
                    "period": period,
                    "spent": spent,
                    "reserved": reserved,
                    "n": requests,
                    "spent0": max(spent, 0),
                    "reserved0": max(reserved, 0),
                }
                for (g, p, period), (spent, reserved, requests) in sorted(deltas.items())
            ],
        )

    def release(self, conn: Connection, reservation_id: str) -> bool:
        """Drop a hold; False if the sweeper already charged it."""
        return reservation_id in self.release_many(conn, [reservation_id])

    def release_many(self, conn: Connection, reservation_ids: list[str]) -> set[str]:
        """Drop holds; the ids that were still held (the others were swept).

        Ids go in chunks padded to a power of two (repeating an id is harmless in ``IN``),
        so the driver prepares a handful of statement shapes, not one per batch size: each
        pooled SQLite connection keeps every shape it has seen (bench/README.md, soak)."""
        ids = list(dict.fromkeys(reservation_ids))
        released: set[str] = set()
        cursor = Cursor(conn)
        for start in range(0, len(ids), RELEASE_CHUNK):
            chunk = ids[start : start + RELEASE_CHUNK]
            chunk += chunk[-1:] * ((1 << (len(chunk) - 1).bit_length()) - len(chunk))
            rows = cursor.rows(
                _release_statement(len(chunk)), {f"i{i}": rid for i, rid in enumerate(chunk)}
            )
            released.update(str(row[0]) for row in rows)
        return released

    def sweep(
        self,
        conn: Connection,
        now: datetime,
        batch: int = 500,
        swept_out: list[SweptHold] | None = None,
    ) -> int:
        """Charge and release holds past their expiry; drop rate windows that are over.

        A stale hold is charged at its worst case, and counted as a request, in every period
        spend is reported in (total, its day, its month), as settlement would have, and
        released from the periods it was held against; a late settlement corrects all three
        to the real cost.
        ``swept_out`` receives each hold charged, so the caller can audit it.
        """
        stale = conn.execute(
            select(
                RESERVATION.c.id,
                RESERVATION.c.grant_id,
                RESERVATION.c.provider,
                RESERVATION.c.amount_micros,
                RESERVATION.c.periods,
                RESERVATION.c.created_at,
            )
            .where(RESERVATION.c.expires_at < now)
            .limit(batch)
        ).all()
        deltas: dict[tuple[str, str, str], list[int]] = {}
        swept = 0
        for rid, grant_id, provider, amount, periods, created_at in stale:
            if not self.release(conn, rid):
                continue  # another replica swept it
            swept += 1
            for period in ("total", day_key(created_at), month_key(created_at)):
                entry = deltas.setdefault((grant_id, provider, period), [0, 0, 0])
                entry[0] += amount
                entry[2] += 1  # a request, as its settlement would have counted it
            for period in _split(periods):
                deltas.setdefault((grant_id, provider, period), [0, 0, 0])[1] -= amount
            if swept_out is not None:
                swept_out.append(SweptHold(rid, grant_id, provider, amount, created_at))
        self.apply(conn, deltas)
        conn.execute(delete(RATE_TABLE).where(RATE.expires_at < now))
        return swept


def _spent_out(limit: int, label: str, amount: int) -> BudgetExceeded:
    """Final: spent alone leaves no room for the request's worst case."""
    return BudgetExceeded(
        f"The {label} spend limit of ${limit / 1e6:.2f} for this grant would be "
        f"exceeded: this request may cost up to ${amount / 1e6:.4f}.",
        headers={"x-should-retry": "false"},
    )


def _split(periods: str) -> Iterable[str]:
    return [p for p in periods.split(",") if p]
