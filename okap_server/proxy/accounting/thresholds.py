"""``budget.threshold`` and ``key.failing``, found in the settlement batch.

Settlement (``proxy/accounting/settlement.py``) already adds each request's spend to its
counters in one transaction off the request's path; this reads back only the counters
that are limited (those a request held spend on: ``Outcome.reserved_periods``), so an
unlimited vault pays nothing, and no request waits for any of it. A counter that went
from below 50 %, 80 % or 100 % of its limit to at or above it is a crossing; each is
written once per counter, period and limit (the event's ``dedupe_key``), however often a
batch is replayed or however many replicas settle.

A grant entry's limits are read as the proxy enforces them (``Limits.from_details``): an
entry stored without limits is held to the vault's default limits, so it crosses their
thresholds too. The defaults come from settings, in memory: no extra query.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from okap_server.accounts.models import Account
from okap_server.grants.counters import SpendCounter
from okap_server.grants.models import Grant
from okap_server.grants.periods import CEILING_PROVIDER, counter_of
from okap_server.grants.view import Limits
from okap_server.proxy.outcome import Outcome
from okap_server.settings import DefaultLimits
from okap_server.vault.models import ProviderKey
from okap_server.webhooks.events import emit

PERCENTS = (50, 80, 100)
MICROS = 1_000_000
Counter = tuple[str, str, str]

_GRANT: Any = Grant.__table__  # type: ignore[attr-defined]
_ACCOUNT: Any = Account.__table__  # type: ignore[attr-defined]
_KEY: Any = ProviderKey.__table__  # type: ignore[attr-defined]
_COUNTER: Any = SpendCounter.__table__  # type: ignore[attr-defined]
_GRANT_LIMIT = {"total": "total_spend", "day": "daily_spend", "week": "weekly_spend"}
_GRANT_LIMIT["month"] = "monthly_spend"
_CEILING = {"day": "daily_ceiling_micros", "week": "weekly_ceiling_micros"}
_CEILING["month"] = "monthly_ceiling_micros"


def crossed(before: int, after: int, limit: int) -> list[int]:
    """The thresholds ``before -> after`` went over, lowest first."""
    if limit <= 0:
        return []
    return [p for p in PERCENTS if before * 100 < limit * p <= after * 100]


def _limited(batch: Iterable[Outcome]) -> dict[Counter, Outcome]:
    found: dict[Counter, Outcome] = {}
    for item in batch:
        if item.admitted and not item.abandoned and item.cost_micros > 0:
            for entry in item.reserved_periods:
                found.setdefault(counter_of(item.grant_id, item.provider, entry), item)
    return found


def _grant_limits(conn: Connection, ids: set[str]) -> dict[str, Any]:
    if not ids:
        return {}
    rows = conn.execute(
        select(
            _GRANT.c.id,
            _GRANT.c.account_id,
            _GRANT.c.client_id,
            _GRANT.c.client_name,
            _GRANT.c.details,
        ).where(_GRANT.c.id.in_(sorted(ids)))
    )
    return {row.id: row for row in rows}


def _ceiling_rows(conn: Connection, table: Any, ids: set[str]) -> dict[str, Any]:
    if not ids:
        return {}
    return {row.id: row for row in conn.execute(select(table).where(table.c.id.in_(sorted(ids))))}


def _limit_of(
    counter: Counter,
    grants: dict[str, Any],
    ceilings: dict[str, Any],
    defaults: DefaultLimits | None,
) -> tuple[int | None, str, str | None]:
    """(limit in micro-dollars, its name, its account) of one counter. ``defaults`` fill a
    grant entry stored without limits, as the proxy's grant view fills them."""
    scope, provider, period = counter
    kind = period.partition(":")[0]
    if provider == CEILING_PROVIDER:
        row = ceilings.get(scope)
        name = _CEILING.get(kind, "")
        if row is None or not name:
            return None, name, None
        account = row.id if scope.startswith("account:") else row.account_id
        return getattr(row, name, None), name.removesuffix("_micros"), account
    grant = grants.get(scope)
    name = _GRANT_LIMIT.get(kind, "")
    if grant is None or not name:
        return None, name, None
    for entry in grant.details or []:
        if entry.get("provider") != provider:
            continue
        raw = entry.get("limits")
        if defaults is not None:
            limit: int | None = getattr(Limits.from_details(raw, defaults), name)
            return limit, name, grant.account_id
        usd = raw.get(name) if isinstance(raw, dict) else None
        if isinstance(usd, int | float) and not isinstance(usd, bool):
            return round(usd * MICROS), name, grant.account_id
    return None, name, grant.account_id


def note_crossings(
    conn: Connection,
    deltas: dict[Counter, list[int]],
    batch: list[Outcome],
    defaults: DefaultLimits | None = None,
) -> None:
    """Write a ``budget.threshold`` event for each limit this batch's spend went over;
    ``defaults`` (the vault's default limits) fill entries stored without limits."""
    limited = {c: item for c, item in _limited(batch).items() if deltas.get(c, [0])[0] > 0}
    if not limited:
        return
    scopes = {c[0] for c in limited}
    grants = _grant_limits(conn, {s for s in scopes if ":" not in s})
    ceilings = {
        **{
            f"account:{k}": v
            for k, v in _ceiling_rows(
                conn,
                _ACCOUNT,
                {s.removeprefix("account:") for s in scopes if s.startswith("account:")},
            ).items()
        },
        **{
            f"key:{k}": v
            for k, v in _ceiling_rows(
                conn, _KEY, {s.removeprefix("key:") for s in scopes if s.startswith("key:")}
            ).items()
        },
    }
    spent = {
        (row.grant_id, row.provider, row.period): int(row.spent_micros)
        for row in conn.execute(
            select(
                _COUNTER.c.grant_id, _COUNTER.c.provider, _COUNTER.c.period, _COUNTER.c.spent_micros
            ).where(
                _COUNTER.c.grant_id.in_(sorted(scopes)),
                _COUNTER.c.period.in_(sorted({c[2] for c in limited})),
            )
        )
    }
    for counter in sorted(limited):
        limit, name, account_id = _limit_of(counter, grants, ceilings, defaults)
        after = spent.get(counter)
        if limit is None or account_id is None or after is None:
            continue
        before = after - deltas[counter][0]
        item = limited[counter]
        for percent in crossed(before, after, limit):
            scope, provider, period = counter
            grant = grants.get(scope)
            data = {
                "scope": scope.partition(":")[0] if ":" in scope else "grant",
                "grant_id": item.grant_id,
                "app": {
                    "client_id": grant.client_id if grant is not None else None,
                    "name": item.client_name,
                },
                "provider": item.provider if provider == CEILING_PROVIDER else provider,
                "limit": name,
                "period": period,
                "percent": percent,
                "limit_usd": limit / MICROS,
                "spent_usd": after / MICROS,
            }
            if scope.startswith("key:"):
                data["key_id"] = scope.removeprefix("key:")
            key = f"budget.threshold:{scope}:{provider}:{period}:{limit}:{percent}"
            emit(conn, "budget.threshold", account_id, data, dedupe_key=key)


def note_failing_keys(conn: Connection, batch: list[Outcome]) -> None:
    """``key.failing``: the provider answered 401 with a stored key (revoked, rotated or
    mistyped), at most once an hour per key."""
    for item in batch:
        if item.key_id and item.admitted and item.status == 401 and item.account_id:
            hour = item.created_at.strftime("%Y-%m-%dT%H")
            data = {
                "key_id": item.key_id,
                "provider": item.provider,
                "status": 401,
                "grant_id": item.grant_id,
                "app": {"name": item.client_name},
            }
            emit(
                conn,
                "key.failing",
                item.account_id,
                data,
                dedupe_key=f"key.failing:{item.key_id}:{hour}",
            )
