"""The accounting's SQL, as text built once per shape.

Written as SQL text, not SQLAlchemy expressions: the same statement runs on SQLite (3.35+)
and PostgreSQL, on the driver's cursor (``db/cursor.py``), because these run on every
request. Every limit is kept by a conditional upsert (``... DO UPDATE ... WHERE <fits>
RETURNING``), so a check and its write are one atomic statement on either back end.
"""

from __future__ import annotations

import functools
from typing import Any

from okap_server.db.cursor import Sql
from okap_server.grants.counters import RateCounter, SpendCounter
from okap_server.proxy.models import Reservation

RATE_TABLE: Any = RateCounter.__table__  # type: ignore[attr-defined]
SPEND_TABLE: Any = SpendCounter.__table__  # type: ignore[attr-defined]
RESERVATION: Any = Reservation.__table__  # type: ignore[attr-defined]
RATE = RATE_TABLE.c
RELEASE_CHUNK = 256


@functools.cache
def rate_statement(windows: int) -> Sql:
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
def grant_hold_statement(periods: int) -> Sql:
    """Holds ``:a`` on a grant entry's own periods (``:p<i>``, limit ``:l<i>``) that still
    have room; returns the periods held. The common case: no ceiling above the grant."""
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


@functools.cache
def hold_statement(rows: int) -> Sql:
    """Holds ``:a`` on every row (``:s<i>``, ``:v<i>``, ``:q<i>``: scope, provider, period)
    that still has room under its limit ``:l<i>``; returns the rows held. A grant's own
    periods and its ceilings' go in one statement."""
    values = ", ".join(f"(:s{i}, :v{i}, :q{i}, 0, CAST(:a AS BIGINT), 0)" for i in range(rows))
    limits = " ".join(
        f"WHEN spend_counter.grant_id = :s{i} AND spend_counter.provider = :v{i} "
        f"AND spend_counter.period = :q{i} THEN CAST(:l{i} AS BIGINT)"
        for i in range(rows)
    )
    return Sql(
        "INSERT INTO spend_counter "  # noqa: S608 (only numbered placeholders go in)
        "(grant_id, provider, period, spent_micros, reserved_micros, requests) "
        f"VALUES {values} "
        "ON CONFLICT (grant_id, provider, period) DO UPDATE SET "
        "reserved_micros = spend_counter.reserved_micros + CAST(:a AS BIGINT) "
        "WHERE spend_counter.spent_micros + spend_counter.reserved_micros + CAST(:a AS BIGINT) "
        f"<= (CASE {limits} END) "
        "RETURNING grant_id, provider, period"
    )


RESERVE = Sql(
    "INSERT INTO reservation (id, grant_id, provider, amount_micros, periods, created_at, "
    "expires_at, account_id, key_id) "
    "VALUES (:id, :g, :p, :a, :periods, :created, :expires, :account, :key)"
)

UNCOUNT = Sql(
    "UPDATE rate_counter SET count = count - CAST(:k AS BIGINT) "
    'WHERE grant_id = :g AND provider = :p AND "window" = :w'
)
UNHOLD = Sql(
    "UPDATE spend_counter SET reserved_micros = reserved_micros - CAST(:a AS BIGINT) "
    "WHERE grant_id = :g AND provider = :p AND period = :period"
)

# Read only when a hold is refused, to tell a budget spent (final) from one held by
# requests in flight (retryable).
SPENT = Sql(
    "SELECT spent_micros FROM spend_counter "
    "WHERE grant_id = :g AND provider = :p AND period = :period"
)

# Spend and requests never go below zero: a settlement is applied once (settlement.py), and
# were one ever applied twice, the limit must not be lifted by a negative spend.
APPLY = Sql(
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
def release_statement(ids: int) -> Sql:
    placeholders = ", ".join(f":i{i}" for i in range(ids))
    return Sql(f"DELETE FROM reservation WHERE id IN ({placeholders}) RETURNING id")  # noqa: S608
