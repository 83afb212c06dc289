"""Spend holds: the worst case of a request reserved on every limited period before it is
forwarded, so concurrent requests cannot together spend past a limit.

The hold is a conditional upsert (``WHERE spent + reserved + amount <= limit``) over every
limited period at once. If any period refuses, what the others held is taken back in the
same transaction: a refusal holds nothing (admissions share one transaction, see
``admission.py``, so a refusal cannot roll the transaction back). A ``reservation`` row
with an expiry records each hold, so a crashed process cannot keep spend reserved for
ever: the sweeper charges a stale hold at its worst case (its outcome is unknown, so never
$0) and releases it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from okap_server.clock import new_id
from okap_server.db.cursor import Cursor
from okap_server.proxy.accounting.periods import day_key, month_key, split_periods
from okap_server.proxy.accounting.statements import (
    APPLY,
    RATE,
    RATE_TABLE,
    RELEASE_CHUNK,
    RESERVATION,
    RESERVE,
    SPENT,
    UNHOLD,
    hold_statement,
    release_statement,
)
from okap_server.proxy.errors import BudgetExceeded, BudgetHeld
from okap_server.proxy.grants import Limits

HELD_RETRY_SECONDS = 1


@dataclass(frozen=True)
class SweptHold:
    """A hold the sweeper charged: a request whose outcome is unknown (its process died)."""

    reservation_id: str
    grant_id: str
    provider: str
    amount_micros: int
    created_at: datetime


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
        held = {str(row[0]) for row in cursor.rows(hold_statement(len(periods)), params)}
        for period, limit, label in periods:
            if period not in held:
                # take back the holds of the periods that had room
                cursor.run_many(
                    UNHOLD,
                    [{"g": grant_id, "p": provider, "a": amount, "period": h} for h in held],
                )
                rows = cursor.rows(SPENT, {"g": grant_id, "p": provider, "period": period})
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
            RESERVE,
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
            APPLY,
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
                release_statement(len(chunk)), {f"i{i}": rid for i, rid in enumerate(chunk)}
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
            for period in split_periods(periods):
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
