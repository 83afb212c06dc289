"""What a grant has used and has left: the ``GET /okap/usage`` answer, and "budget left"
for token introspection. Plain functions over a session; no web framework."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from okap_server.accounts.models import Account
from okap_server.authorization.delegation import chain_is_live, children_tree, delegation_view
from okap_server.authorization.models import Grant
from okap_server.clock import isoformat_z, utcnow
from okap_server.proxy.accounting.ceilings import ceiling_report
from okap_server.proxy.accounting.periods import day_key, month_key, week_key
from okap_server.proxy.grants import Limits
from okap_server.proxy.models import RateCounter, SpendCounter
from okap_server.proxy.providers.catalog import ProviderCatalog
from okap_server.settings import Settings
from okap_server.vault.models import ProviderKey


def _usd(micros: int | None) -> float | None:
    return None if micros is None else round(micros / 1_000_000, 6)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def find_grant(session: Session, hashed: str) -> Grant | None:
    return session.exec(select(Grant).where(Grant.token_hash == hashed)).first()


def grant_is_active(grant: Grant, now: datetime | None = None) -> bool:
    return grant.revoked_at is None and _aware(grant.expires_at) > (now or utcnow())


def _window(used: int, limit: int | None, held: int = 0) -> dict[str, Any]:
    remaining = None if limit is None else max(limit - used - held, 0)
    return {"used": used, "limit": limit, "remaining": remaining}


def usage_report(
    session: Session,
    grant: Grant,
    settings: Settings,
    now: datetime | None = None,
    catalog: ProviderCatalog | None = None,
) -> dict[str, dict[str, Any]]:
    """Per provider: spend (USD) used/limit/remaining by day, month and total, and
    requests by minute and day. ``remaining`` subtracts spend held by requests in flight;
    a null limit means none."""
    now = now or utcnow()
    catalog = catalog or ProviderCatalog.from_settings(settings)
    day, week, month = day_key(now), week_key(now), month_key(now)
    minute = f"minute:{int(now.timestamp() // 60)}"
    spend = {
        (row.provider, row.period): row
        for row in session.exec(
            select(SpendCounter).where(
                SpendCounter.grant_id == grant.id,
                SpendCounter.period.in_(["total", day, week, month]),  # type: ignore[attr-defined]
            )
        )
    }
    rates = {
        (row.provider, row.window): row.count
        for row in session.exec(
            select(RateCounter).where(
                RateCounter.grant_id == grant.id,
                RateCounter.window.in_([minute, day]),  # type: ignore[attr-defined]
            )
        )
    }
    report: dict[str, dict[str, Any]] = {}
    for entry in grant.details:
        named = str(entry.get("provider", ""))
        provider = catalog.canonical(named) or named
        limits = Limits.from_details(entry.get("limits"), settings.default_limits)
        windows: dict[str, Any] = {}
        for name, period, limit in (
            ("day", day, limits.daily_spend),
            ("week", week, limits.weekly_spend),
            ("month", month, limits.monthly_spend),
            ("total", "total", limits.total_spend),
        ):
            row = spend.get((provider, period))
            used = row.spent_micros if row else 0
            held = row.reserved_micros if row else 0
            window = _window(used, limit, held)
            windows[name] = {k: _usd(v) if k != "limit" else _usd(limit) for k, v in window.items()}
        day_row = spend.get((provider, day))
        day_requests = rates.get((provider, day), day_row.requests if day_row else 0)
        report[named] = {
            "spend": windows,
            "requests": {
                "minute": _window(rates.get((provider, minute), 0), limits.requests_per_minute),
                "day": _window(day_requests, limits.requests_per_day),
            },
        }
    return report


def public_details(grant: Grant, settings: Settings) -> list[dict[str, Any]]:
    """The granted entries as an app may see them: ``key_id`` out, ``base_url`` in."""
    base = settings.effective_public_url
    shown = []
    for entry in grant.details:
        item = {k: v for k, v in entry.items() if k != "key_id"}
        item["base_url"] = f"{base}/v1/{entry.get('provider', '')}"
        item.setdefault("expires", isoformat_z(grant.expires_at))
        shown.append(item)
    return shown


def usage_document(
    session: Session, grant: Grant, settings: Settings, catalog: ProviderCatalog | None = None
) -> dict[str, Any]:
    """The whole ``GET /okap/usage`` body (a disabled account's grant is not active)."""
    account = session.get(Account, grant.account_id)
    if not grant_is_active(grant) or account is None or account.disabled:
        return {"active": False}
    if not chain_is_live(session, grant):  # a delegated grant ends with its ancestors
        return {"active": False}
    return {
        "active": True,
        "grant_id": grant.id,
        "expires_at": isoformat_z(grant.expires_at),
        "authorization_details": public_details(grant, settings),
        "usage": usage_report(session, grant, settings, catalog=catalog),
        "ceilings": grant_ceilings(session, grant, account),
        "delegation": delegation_report(session, grant),
    }


def delegation_report(session: Session, grant: Grant) -> dict[str, Any]:
    """The grant's place in its delegation tree (RFC 8693), and the tokens delegated from
    it, each with its total spend (which includes its own delegates'). The grant's own
    ``usage`` already counts all of their spend: a child's spend is its parents' too."""
    below = children_tree(session, grant)
    totals: dict[str, int] = {}
    if below:
        for row in session.exec(
            select(SpendCounter).where(
                col(SpendCounter.grant_id).in_([g.id for _, g in below]),
                SpendCounter.period == "total",
            )
        ):
            totals[row.grant_id] = totals.get(row.grant_id, 0) + row.spent_micros
    now = utcnow()
    return {
        **delegation_view(grant),
        "delegated": [
            {
                "grant_id": child.id,
                "parent_grant_id": child.parent_grant_id,
                "client_name": child.client_name,
                "depth": child.depth,
                "active": grant_is_active(child, now),
                "spend_total": _usd(totals.get(child.id, 0)),
            }
            for _, child in below
        ],
    }


def grant_ceilings(session: Session, grant: Grant, account: Account) -> dict[str, Any]:
    """The ceilings above this grant: its account's, and those of the keys its entries
    name (an entry without one uses its provider's default key)."""
    wanted = {str(e["key_id"]) for e in grant.details if isinstance(e.get("key_id"), str)}
    providers = {str(e.get("provider", "")) for e in grant.details if not e.get("key_id")}
    keys = [
        k
        for k in session.exec(select(ProviderKey).where(ProviderKey.account_id == account.id))
        if k.id in wanted or (k.is_default and k.provider in providers)
    ]
    return ceiling_report(session, account, keys, utcnow())
