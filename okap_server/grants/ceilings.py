"""Setting and reading spend ceilings: the account's (over all its grants) and a provider
key's (over every grant it backs). Shared by the CLI, the dashboard and ``/okap/usage``,
so every surface validates and reports them the same way."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from okap_server.accounts.models import Account
from okap_server.grants.counters import SpendCounter
from okap_server.grants.details import MAX_SPEND_USD
from okap_server.grants.models import Grant
from okap_server.grants.periods import (
    CEILING_PROVIDER,
    account_scope,
    day_key,
    key_scope,
    month_key,
    week_key,
)
from okap_server.vault.models import ProviderKey

MICROS = 1_000_000
ACCOUNT_PERIODS = ("daily", "weekly", "monthly")


class CeilingError(ValueError):
    """A ceiling that cannot be stored; the message says which and why."""


def parse_ceiling(name: str, value: Any) -> int | None:
    """USD (a number, or text from a form or the command line) to micro-dollars; empty
    text or None clears the ceiling."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise CeilingError(f"{name}: must be a number of USD")
    try:
        amount = float(value.strip().lstrip("$")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise CeilingError(f"{name}: {str(value)[:40]!r} is not a number of USD") from None
    if not math.isfinite(amount):
        raise CeilingError(f"{name}: must be a finite number")
    if amount < 0:
        raise CeilingError(f"{name}: must not be negative")
    if amount > MAX_SPEND_USD:
        raise CeilingError(f"{name}: more than {MAX_SPEND_USD:,.0f} USD")
    return round(amount * MICROS)


def set_account_ceilings(session: Session, account: Account, **usd: Any) -> None:
    """Set the named ceilings (``daily``, ``weekly``, ``monthly``; None clears one); the
    others stay. The caller commits, then reports the account's grants changed, so the
    proxy's cached grants see the new ceiling on their next request."""
    parsed = {}
    for name, value in usd.items():
        if name not in ACCOUNT_PERIODS:
            raise CeilingError(f"{name}: unknown ceiling (daily, weekly or monthly)")
        parsed[name] = parse_ceiling(f"{name} ceiling", value)
    for name, micros in parsed.items():
        setattr(account, f"{name}_ceiling_micros", micros)
    session.add(account)


def set_key_ceiling(session: Session, key: ProviderKey, monthly: Any) -> None:
    key.monthly_ceiling_micros = parse_ceiling("monthly key ceiling", monthly)
    session.add(key)


def grant_ids_of(session: Session, account_id: str) -> list[str]:
    """The grants a ceiling change reaches: every grant of the account."""
    return list(session.exec(select(Grant.id).where(Grant.account_id == account_id)))


def _window(spent: int, held: int, limit: int | None) -> dict[str, float | None]:
    remaining = None if limit is None else max(limit - spent - held, 0)
    return {
        "used": round(spent / MICROS, 6),
        "limit": None if limit is None else round(limit / MICROS, 6),
        "remaining": None if remaining is None else round(remaining / MICROS, 6),
    }


def ceiling_report(
    session: Session, account: Account, keys: Iterable[ProviderKey], now: datetime
) -> dict[str, Any]:
    """What the account and each key has spent this period, its ceiling and what is left
    (``remaining`` subtracts spend held by requests in flight; never negative)."""
    day, week, month = day_key(now), week_key(now), month_key(now)
    keys = list(keys)
    scopes = [account_scope(account.id)] + [key_scope(k.id) for k in keys]
    rows = {
        (row.grant_id, row.period): row
        for row in session.exec(
            select(SpendCounter).where(
                col(SpendCounter.grant_id).in_(scopes),
                SpendCounter.provider == CEILING_PROVIDER,
                col(SpendCounter.period).in_([day, week, month]),
            )
        )
    }

    def window(scope: str, period: str, limit: int | None) -> dict[str, float | None]:
        row = rows.get((scope, period))
        return _window(row.spent_micros if row else 0, row.reserved_micros if row else 0, limit)

    scope = account_scope(account.id)
    return {
        "account": {
            "day": window(scope, day, account.daily_ceiling_micros),
            "week": window(scope, week, account.weekly_ceiling_micros),
            "month": window(scope, month, account.monthly_ceiling_micros),
        },
        "keys": {
            k.id: {
                "provider": k.provider,
                "label": k.label,
                "month": window(key_scope(k.id), month, k.monthly_ceiling_micros),
            }
            for k in keys
        },
    }


def account_ceiling_report(session: Session, account_id: str, now: datetime) -> dict[str, Any]:
    """``ceiling_report`` for the account and every key it holds: what the dashboard's
    Settings and Keys pages and ``GET /api/v1/me/usage`` show."""
    account = session.get(Account, account_id)
    if account is None:
        raise LookupError(account_id)
    keys = session.exec(select(ProviderKey).where(ProviderKey.account_id == account_id)).all()
    return ceiling_report(session, account, keys, now)


def delete_counters(session: Session, account_id: str) -> None:
    """An account's counters, its grants' and its keys': ``spend_counter`` has no foreign
    key (a ceiling's row names no grant), so removing an account removes them by hand."""
    keys = list(session.exec(select(ProviderKey.id).where(ProviderKey.account_id == account_id)))
    scopes = [account_scope(account_id), *(key_scope(k) for k in keys)]
    session.execute(
        delete(SpendCounter).where(
            or_(
                col(SpendCounter.grant_id).in_(scopes),
                col(SpendCounter.grant_id).in_(
                    select(Grant.id).where(Grant.account_id == account_id)
                ),
            )
        )
    )
