"""The rows a request's spend hold is taken on, and how a refusal names the limit.

A request holds on its grant entry's limited periods and on the ceilings above it: its
account's and its provider key's. The order of the rows is the lock order every
transaction follows (``deltas.py``), so it is fixed here, once.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from okap_server.proxy.accounting.periods import (
    CEILING_PROVIDER,
    account_scope,
    day_key,
    key_scope,
    month_key,
    week_key,
)
from okap_server.proxy.errors import BudgetExceeded
from okap_server.proxy.grants import Ceilings, Limits


class HoldRow(NamedTuple):
    """One counter row a hold is taken on, with its limit and how a refusal names it.
    A named tuple, not a dataclass: rows are built on every request, and a frozen
    dataclass costs several times as much to make."""

    scope: str
    provider: str
    period: str
    limit: int
    label: str  # daily, weekly, monthly, total
    owner: str  # grant, account, key

    def limit_name(self) -> str:
        """For ``x-okap-limit``: which limit refused, e.g. ``account.daily``."""
        return f"{self.owner}.{self.label}"


def hold_rows(
    grant_id: str, provider: str, limits: Limits, now: datetime, ceilings: Ceilings
) -> list[HoldRow]:
    """Every limited row a request of ``now`` holds on: its ceilings' first (account, then
    key), then the grant entry's own periods, each group in the sorted order of its period
    keys (``day:`` < ``month:`` < ``total`` < ``week:``). Always in this order, the order
    settlement applies its deltas in too (``deltas.py``), so holds and settlements lock
    rows in one order and cannot deadlock on PostgreSQL. A period's key is worked out only
    if a limit needs it (these run on every request)."""
    rows: list[HoldRow] = []
    if ceilings.set:
        account = account_scope(ceilings.account_id)
        if ceilings.daily is not None:
            rows.append(
                HoldRow(account, CEILING_PROVIDER, day_key(now), ceilings.daily, "daily", "account")
            )
        if ceilings.monthly is not None:
            month = month_key(now)
            rows.append(
                HoldRow(account, CEILING_PROVIDER, month, ceilings.monthly, "monthly", "account")
            )
        if ceilings.weekly is not None:
            week = week_key(now)
            rows.append(
                HoldRow(account, CEILING_PROVIDER, week, ceilings.weekly, "weekly", "account")
            )
        if ceilings.key_monthly is not None and ceilings.key_id is not None:
            key, limit = key_scope(ceilings.key_id), ceilings.key_monthly
            rows.append(HoldRow(key, CEILING_PROVIDER, month_key(now), limit, "monthly", "key"))
    for ancestor, above in ceilings.ancestors:  # a delegated grant's, root first
        _grant_rows(rows, ancestor, provider, above, now, "delegator")
    _grant_rows(rows, grant_id, provider, limits, now, "grant")
    return rows


def _grant_rows(
    rows: list[HoldRow], grant_id: str, provider: str, limits: Limits, now: datetime, owner: str
) -> None:
    """One grant entry's limited periods, in the sorted order of their keys. A delegation
    chain's entries come root first, then down the chain (the order of their ids' paths,
    which settlement sorts by too: ``deltas.py``)."""
    if limits.daily_spend is not None:
        rows.append(HoldRow(grant_id, provider, day_key(now), limits.daily_spend, "daily", owner))
    if limits.monthly_spend is not None:
        month = month_key(now)
        rows.append(HoldRow(grant_id, provider, month, limits.monthly_spend, "monthly", owner))
    if limits.total_spend is not None:
        rows.append(HoldRow(grant_id, provider, "total", limits.total_spend, "total", owner))
    if limits.weekly_spend is not None:
        week = week_key(now)
        rows.append(HoldRow(grant_id, provider, week, limits.weekly_spend, "weekly", owner))


def named(row: HoldRow) -> str:
    money = f"${row.limit / 1e6:.2f}"
    if row.owner == "account":
        return f"The account's {row.label} spend ceiling of {money} (over all its grants)"
    if row.owner == "delegator":
        return (
            f"The {row.label} spend limit of {money} of the grant this token was delegated "
            "from (over it and every token delegated from it)"
        )
    if row.owner == "key":
        return (
            f"The {row.label} spend ceiling of {money} on this grant's provider key "
            "(over every grant the key backs)"
        )
    return f"The {row.label} spend limit of {money} for this grant"


def spent_out(row: HoldRow, amount: int) -> BudgetExceeded:
    """Final: spent alone leaves no room for the request's worst case."""
    return BudgetExceeded(
        f"{named(row)} would be exceeded: this request may cost up to ${amount / 1e6:.4f}.",
        headers={"x-should-retry": "false", "x-okap-limit": row.limit_name()},
    )
