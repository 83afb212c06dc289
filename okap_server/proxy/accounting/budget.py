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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from okap_server.clock import new_id
from okap_server.db.cursor import Cursor
from okap_server.proxy.accounting.deltas import Counter, Deltas, periods_of
from okap_server.proxy.accounting.holds import HoldRow, hold_rows, named, spent_out
from okap_server.proxy.accounting.nesting import ancestries
from okap_server.proxy.accounting.periods import (
    counter_of,
    held_entry,
    split_periods,
)
from okap_server.proxy.accounting.statements import (
    APPLY,
    RATE,
    RATE_TABLE,
    RELEASE_CHUNK,
    RESERVATION,
    RESERVE,
    SPENT,
    UNHOLD,
    grant_hold_statement,
    hold_statement,
    release_statement,
)
from okap_server.proxy.errors import BudgetHeld
from okap_server.proxy.grants import NO_CEILINGS, Ceilings, Limits

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
        ceilings: Ceilings = NO_CEILINGS,
    ) -> tuple[str, tuple[str, ...]]:
        """Hold ``amount`` on every limited spend period, and record the request in flight.

        The ``reservation`` row is written for every admitted request, limited in spend or
        not: it is the durable trace that the request may be answered, so if the process
        dies before recording it the sweeper still audits it (outcome unknown, charged at
        ``amount``, its worst case). Returns the row's id and the periods held against."""
        periods = self.hold(cursor, grant_id, provider, limits, amount, now, ceilings)
        (reservation_id,) = self.record(
            cursor, grant_id, provider, [(amount, now)], periods, ttl, ceilings
        )
        return reservation_id, periods

    def hold(
        self,
        cursor: Cursor,
        grant_id: str,
        provider: str,
        limits: Limits,
        amount: int,
        now: datetime,
        ceilings: Ceilings = NO_CEILINGS,
    ) -> tuple[str, ...]:
        """Hold ``amount`` on every limited spend period of ``now``, the grant entry's and
        its ceilings', all or none (BudgetExceeded, naming the limit that refused); the
        periods held against, as ``reserved_periods`` names them."""
        rows = hold_rows(grant_id, provider, limits, now, ceilings)
        return self.hold_on(cursor, grant_id, provider, rows, amount, mixed=ceilings.set)

    def hold_on(
        self,
        cursor: Cursor,
        grant_id: str,
        provider: str,
        rows: list[HoldRow],
        amount: int,
        *,
        mixed: bool,
    ) -> tuple[str, ...]:
        """Hold ``amount`` on ``rows`` (``hold_rows``, or a part of them), all or none.
        ``mixed``: some rows are not the grant entry's own (a ceiling's, an ancestor's)."""
        for row in rows:
            if amount > row.limit:
                raise spent_out(row, amount)
        if not rows:
            return ()
        # One statement for every limited row: held only where it still fits.
        held = _hold(cursor, grant_id, provider, rows, amount, mixed)
        for row in rows:
            if (row.scope, row.provider, row.period) not in held:
                # take back the holds of the rows that had room
                cursor.run_many(
                    UNHOLD,
                    [{"g": g, "p": p, "a": amount, "period": q} for g, p, q in sorted(held)],
                )
                found = cursor.rows(
                    SPENT, {"g": row.scope, "p": row.provider, "period": row.period}
                )
                spent = int(found[0][0]) if found else 0
                if spent + amount > row.limit:
                    raise spent_out(row, amount)
                raise BudgetHeld(
                    f"{named(row)} is held by requests in flight (each holds its worst case "
                    "until it settles); retry in a moment.",
                    headers={
                        "retry-after": str(HELD_RETRY_SECONDS),
                        "x-should-retry": "true",
                        "x-okap-limit": row.limit_name(),
                    },
                )
        return tuple(held_entry(grant_id, r.scope, r.period) for r in rows)

    def unhold(
        self, cursor: Cursor, grant_id: str, provider: str, amount: int, periods: tuple[str, ...]
    ) -> None:
        """Take back a hold of this transaction (its request was refused after all)."""
        cursor.run_many(
            UNHOLD,
            [
                dict(zip(("g", "p", "period"), counter_of(grant_id, provider, e), strict=True))
                | {"a": amount}
                for e in periods
            ],
        )

    def record(
        self,
        cursor: Cursor,
        grant_id: str,
        provider: str,
        requests: list[tuple[int, datetime]],
        periods: tuple[str, ...],
        ttl: timedelta,
        ceilings: Ceilings = NO_CEILINGS,
    ) -> list[str]:
        """Record requests in flight, each ``(amount, now)``: one ``reservation`` row each,
        naming the account and key whose ceilings the sweeper charges if it goes stale."""
        ids = [new_id("rsv_") for _ in requests]
        joined = ",".join(periods)
        account = ceilings.account_id or None
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
                    "account": account,
                    "key": ceilings.key_id,
                }
                for rid, (amount, now) in zip(ids, requests, strict=True)
            ],
        )
        return ids

    def apply(self, conn: Connection, deltas: Mapping[Counter, list[int]]) -> None:
        """Add ``[spent, reserved, requests]`` deltas to counters, creating rows as needed,
        in the order :func:`hold_rows` locks them (``Deltas.ordered``; a plain mapping, of
        one grant's rows, in sorted order)."""
        if not deltas:
            return
        ordered = deltas.ordered() if isinstance(deltas, Deltas) else sorted(deltas.items())
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
                for (g, p, period), (spent, reserved, requests) in ordered
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
        spend is reported in (total, its day, week and month, and its ceilings'), as
        settlement would have, and released from the periods it was held against; a late
        settlement corrects them to the real cost.
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
                RESERVATION.c.account_id,
                RESERVATION.c.key_id,
            )
            .where(RESERVATION.c.expires_at < now)
            .limit(batch)
        ).all()
        deltas = Deltas()
        swept = 0
        lineage = ancestries(conn, {row[1] for row in stale})
        for rid, grant_id, provider, amount, periods, created_at, account_id, key_id in stale:
            if not self.release(conn, rid):
                continue  # another replica swept it
            swept += 1
            above = lineage.get(grant_id, ())
            deltas.place(grant_id, provider, account_id, key_id, above)
            deltas.charge(
                grant_id, provider, periods_of(created_at), account_id, key_id, amount, 1, above
            )
            for entry in split_periods(periods):
                deltas.add(counter_of(grant_id, provider, entry), reserved=-amount)
            if swept_out is not None:
                swept_out.append(SweptHold(rid, grant_id, provider, amount, created_at))
        self.apply(conn, deltas)
        conn.execute(delete(RATE_TABLE).where(RATE.expires_at < now))
        return swept


def _hold(
    cursor: Cursor,
    grant_id: str,
    provider: str,
    rows: list[HoldRow],
    amount: int,
    ceilings: bool,
) -> set[tuple[str, str, str]]:
    """Run the hold; the rows held. Without ceilings every row is the grant entry's own,
    and the narrower statement (one scope, limits by period) costs about 10 % less
    admission on SQLite (``bench.components``), so the common case keeps it."""
    params: dict[str, Any] = {"a": amount}
    if not ceilings:
        params.update({"g": grant_id, "p": provider})
        for i, row in enumerate(rows):
            params.update({f"p{i}": row.period, f"l{i}": row.limit})
        found = cursor.rows(grant_hold_statement(len(rows)), params)
        return {(grant_id, provider, str(q)) for (q,) in found}
    for i, row in enumerate(rows):
        params.update(
            {f"s{i}": row.scope, f"v{i}": row.provider, f"q{i}": row.period, f"l{i}": row.limit}
        )
    return {(str(g), str(p), str(q)) for g, p, q in cursor.rows(hold_statement(len(rows)), params)}
