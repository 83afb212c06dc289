"""Connected apps: what each grant allows, what it has used, and the person's two levers,
Revoke and Edit limits. Framework-free; every lookup is scoped by account id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from okap_server.accounts.models import Account
from okap_server.audit.events import record_event
from okap_server.authorization.capabilities import LIMIT_LABELS, LIMIT_NAMES, SPEND_LIMITS
from okap_server.authorization.details import check_limit
from okap_server.authorization.errors import InvalidAuthorizationDetails
from okap_server.authorization.models import Grant
from okap_server.authorization.revocation import revoke_grant
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.dashboard import formatting as fmt
from okap_server.proxy.usage import grant_ceilings, usage_report


class LimitsError(Exception):
    """The edited limits are not valid; the message names the field."""


@dataclass(frozen=True)
class Bar:
    label: str
    line: str
    percent: int
    level: str  # "ok" | "near" | "full"


@dataclass(frozen=True)
class ProviderView:
    index: int
    provider: str
    name: str
    models: str
    capabilities: str
    limits: list[tuple[str, str]]
    raw_limits: dict[str, Any]
    uses_defaults: bool
    bars: list[Bar]
    reason: str | None
    # Why the proxy refuses this provider's requests now ("monthly limit reached"), if it does.
    refusing: str | None = None


@dataclass(frozen=True)
class AppView:
    id: str
    client_name: str
    client_id: str
    client_url: str | None
    redirect_host: str | None
    flow: str
    active: bool
    status: str
    created: str
    last_used: str
    expires: str
    providers: list[ProviderView] = field(default_factory=list)


def _level(pct: int) -> str:
    return "full" if pct >= 100 else "near" if pct >= 80 else "ok"


def _bars(report: dict[str, Any]) -> list[Bar]:
    bars: list[Bar] = []
    spend = report.get("spend", {})
    for period in ("month", "week", "day", "total"):
        window = spend.get(period) or {}
        limit = window.get("limit")
        used = float(window.get("used") or 0.0)
        if limit is None and period != "month":
            continue
        pct = fmt.percent(used, limit)
        bars.append(
            Bar(
                f"Spend {fmt.PERIOD_WORDS[period]}",
                fmt.spend_line(used, limit, period),
                pct,
                _level(pct),
            )
        )
    day = (report.get("requests") or {}).get("day") or {}
    used_requests = int(day.get("used") or 0)
    pct = fmt.percent(used_requests, day.get("limit"))
    bars.append(
        Bar("Requests today", fmt.requests_line(used_requests, day.get("limit")), pct, _level(pct))
    )
    return bars


# What a spent window is called on the card, in the order the proxy checks them.
SPENT = (
    ("spend", "total", "total spend limit reached"),
    ("spend", "month", "monthly limit reached"),
    ("spend", "week", "weekly limit reached"),
    ("spend", "day", "daily limit reached"),
    ("requests", "day", "daily request limit reached"),
)


def _refusing(report: dict[str, Any]) -> str | None:
    """The first window whose limit is used up: the proxy refuses until it resets, and the
    person should not have to work that out from a full bar."""
    for kind, period, words in SPENT:
        window = (report.get(kind) or {}).get(period) or {}
        limit = window.get("limit")
        if limit is not None and float(window.get("used") or 0) >= float(limit):
            return words
    return None


def _ceiling_bars(ceilings: dict[str, Any], key_id: Any) -> list[Bar]:
    """The ceilings above an entry that are set: its account's, and its key's."""
    windows = [
        (f"Account ceiling {fmt.PERIOD_WORDS[p]}", p, ceilings["account"][p])
        for p in ("day", "week", "month")
    ]
    key = ceilings["keys"].get(key_id) if isinstance(key_id, str) else None
    if key is not None:
        windows.append(("Key ceiling this month", "month", key["month"]))
    bars = []
    for label, period, window in windows:
        limit, used = window["limit"], float(window["used"] or 0.0)
        if limit is not None:
            pct = fmt.percent(used, limit)
            bars.append(Bar(label, fmt.spend_line(used, limit, period), pct, _level(pct)))
    return bars


def app_view(vault: Vault, session: Session, grant: Grant, now: datetime | None = None) -> AppView:
    now = now or utcnow()
    report = usage_report(session, grant, vault.settings, now=now, catalog=vault.providers)
    account = session.get(Account, grant.account_id)
    ceilings = grant_ceilings(session, grant, account) if account is not None else None
    defaults = vault.settings.default_limits.model_dump()
    providers = []
    for index, entry in enumerate(grant.details):
        provider = str(entry.get("provider", ""))
        row = vault.providers.get(provider)
        raw = entry.get("limits") or {}
        uses_defaults = not raw  # stored with no limits object: the proxy applies defaults
        effective = defaults if uses_defaults else raw
        models = entry.get("models") or []
        providers.append(
            ProviderView(
                index=index,
                provider=provider,
                name=row.name if row else provider,
                models=", ".join(models) if models else "all models",
                capabilities=", ".join(entry.get("capabilities") or []) or "none",
                limits=[
                    (LIMIT_LABELS[n], fmt.limit_value(n, effective.get(n)))
                    for n in LIMIT_NAMES
                    if effective.get(n) is not None
                ],
                raw_limits={n: raw.get(n) for n in LIMIT_NAMES},
                uses_defaults=uses_defaults,
                bars=_bars(report.get(provider, {}))
                + (_ceiling_bars(ceilings, entry.get("key_id")) if ceilings else []),
                reason=entry.get("reason"),
                refusing=_refusing(report.get(provider, {})),
            )
        )
    revoked = grant.revoked_at is not None
    expired = fmt.aware(grant.expires_at) <= now
    return AppView(
        id=grant.id,
        client_name=grant.client_name,
        client_id=grant.client_id,
        client_url=grant.client_url,
        redirect_host=grant.redirect_host,
        flow=grant.flow,
        active=not revoked and not expired,
        status="revoked" if revoked else "expired" if expired else "active",
        created=fmt.timestamp(grant.created_at),
        last_used=fmt.ago(grant.last_used_at, now),
        expires=fmt.expiry(grant.expires_at, now, revoked),
        providers=providers,
    )


def own_grant(session: Session, account_id: str, grant_id: str) -> Grant | None:
    """The grant if it belongs to this account; another account's grant is never found."""
    grant = session.get(Grant, grant_id[:40])
    return grant if grant is not None and grant.account_id == account_id else None


def list_apps(
    vault: Vault, session: Session, account_id: str, *, include_inactive: bool = False
) -> list[AppView]:
    """Active grants first, newest first; then revoked and expired ones if asked."""
    # A delegated token shows in the tree of the app it came from, not as an app of its own.
    query = select(Grant).where(Grant.account_id == account_id, col(Grant.ancestry).is_(None))
    if not include_inactive:
        query = query.where(col(Grant.revoked_at).is_(None), col(Grant.expires_at) > utcnow())
    grants = session.exec(query.order_by(col(Grant.created_at).desc()).limit(200)).all()
    now = utcnow()
    views = [app_view(vault, session, g, now) for g in grants]
    return sorted(views, key=lambda v: (not v.active,))


def revoke(vault: Vault, account_id: str, grant_id: str, ip: str | None) -> Grant | None:
    """Revoke one of this account's grants through the authorization server's function,
    then tell the proxy's cache. None if the grant is not this account's."""
    with vault.session() as session:
        grant = own_grant(session, account_id, grant_id)
        if grant is None:
            return None
        if revoke_grant(session, grant, by="person", account_id=account_id, ip=ip):
            session.commit()
            vault.grant_changed(grant.id)
        return grant


def parse_limits_form(form: dict[str, str], prefix: str) -> dict[str, float | int | None]:
    """Six limit fields of one provider entry; empty means none."""
    limits: dict[str, float | int | None] = {}
    for name in LIMIT_NAMES:
        text = form.get(f"{prefix}.{name}", "").strip().replace(",", "").lstrip("$")
        if not text:
            limits[name] = None
            continue
        try:
            amount: float | int = float(text) if name in SPEND_LIMITS else int(float(text))
            if name not in SPEND_LIMITS and float(text) != int(float(text)):
                raise LimitsError(f"{LIMIT_LABELS[name]}: must be a whole number")
            limits[name] = check_limit(name, name, amount)
        except ValueError:
            raise LimitsError(f"{LIMIT_LABELS[name]}: must be a number") from None
        except InvalidAuthorizationDetails as exc:
            reason = str(exc.description).split(": ", 1)[-1]
            raise LimitsError(f"{LIMIT_LABELS[name]}: {reason}") from None
    return limits


def edit_limits(
    vault: Vault, account_id: str, grant_id: str, form: dict[str, str], ip: str | None
) -> Grant | None:
    """Replace the limits of every provider entry of a grant with what the person typed.

    The person may lower or raise them. Raises LimitsError (nothing changed) on bad input;
    None if the grant is not this account's."""
    with vault.session() as session:
        grant = own_grant(session, account_id, grant_id)
        if grant is None:
            return None
        if grant.revoked_at is not None:
            raise LimitsError("This app's access was revoked; there is nothing to edit.")
        details = [dict(entry) for entry in grant.details]
        changes: dict[str, Any] = {}
        for index, entry in enumerate(details):
            new = parse_limits_form(form, f"p{index}")
            old = {n: (entry.get("limits") or {}).get(n) for n in LIMIT_NAMES}
            if new != old:
                changes[str(entry.get("provider"))] = {"from": old, "to": new}
            entry["limits"] = new
        if not changes:
            return grant
        grant.details = details
        grant.version += 1
        session.add(grant)
        record_event(
            session,
            "grant_limits_changed",
            account_id=account_id,
            ip=ip,
            grant_id=grant.id,
            client_id=grant.client_id,
            changes=changes,
        )
        session.commit()
    vault.grant_changed(grant.id)
    return grant
