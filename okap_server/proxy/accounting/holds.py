"""The rows a request's spend hold is taken on, and how a refusal names the limit.

A request holds on its grant entry's limited periods and on the ceilings above it: its
account's and its provider key's. The order of the rows is the lock order every
transaction follows (``deltas.py``), so it is fixed here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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


@dataclass(frozen=True)
class HoldRow:
    """One counter row a hold is taken on, with its limit and how a refusal names it."""

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
    key), then the grant entry's own periods in order. Always in this order, the order
    settlement applies its deltas in too (``settlement.py``), so holds and settlements
    lock rows in one order and cannot deadlock on PostgreSQL."""
    day, week, month = day_key(now), week_key(now), month_key(now)
    rows: list[HoldRow] = []
    if ceilings.set:
        account = account_scope(ceilings.account_id)
        for period, limit, label in (
            (day, ceilings.daily, "daily"),
            (month, ceilings.monthly, "monthly"),
            (week, ceilings.weekly, "weekly"),
        ):
            if limit is not None:
                rows.append(HoldRow(account, CEILING_PROVIDER, period, limit, label, "account"))
        if ceilings.key_monthly is not None and ceilings.key_id is not None:
            key = key_scope(ceilings.key_id)
            rows.append(
                HoldRow(key, CEILING_PROVIDER, month, ceilings.key_monthly, "monthly", "key")
            )
    own = [
        HoldRow(grant_id, provider, period, limit, label, "grant")
        for period, limit, label in (
            ("total", limits.total_spend, "total"),
            (day, limits.daily_spend, "daily"),
            (week, limits.weekly_spend, "weekly"),
            (month, limits.monthly_spend, "monthly"),
        )
        if limit is not None
    ]
    rows.extend(sorted(own, key=lambda row: row.period))
    return rows


def named(row: HoldRow) -> str:
    money = f"${row.limit / 1e6:.2f}"
    if row.owner == "account":
        return f"The account's {row.label} spend ceiling of {money} (over all its grants)"
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
