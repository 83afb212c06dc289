"""An account's grants: page, read, revoke, edit limits, narrow (with a version check).

The dashboard and the management API make each decision through one function here:
``revoke`` (``grants.lifecycle``: audit and the replicas' notice), ``edit_limits`` (the
dashboard's form: the person may raise or lower a limit) and ``narrow_grant`` (an API
PATCH may only make a grant narrower, SPEC.md "Narrowing", reusing consent's
``narrow_entry``); both record one ``grant_limits_changed`` through ``_record_change``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from okap_server.audit.events import record_event
from okap_server.authorization.defaults import effective_limits
from okap_server.authorization.grants import grant_expiry
from okap_server.authorization.narrowing import Narrowing, NarrowingError, narrow_entry
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.grants import lifecycle
from okap_server.grants.capabilities import LIMIT_NAMES
from okap_server.grants.details import stored
from okap_server.grants.models import Grant
from okap_server.grants.usage import usage_report
from okap_server.manage.paging import aware, decode_cursor, encode_cursor, stamp
from okap_server.settings import DefaultLimits

# No default fills a limit the grant has none of: a PATCH starts from the grant as it is.
_NO_DEFAULTS = DefaultLimits.model_validate({name: None for name in DefaultLimits.model_fields})


class LimitsError(Exception):
    """The edited limits are not valid; the message names the field."""


class StaleVersion(Exception):
    """The grant changed since the caller read it (RFC 9110 §13.1.1)."""


@dataclass(frozen=True)
class GrantFilter:
    provider: str | None = None
    app: str | None = None
    active: bool | None = None


@dataclass
class EntryChange:
    """What a PATCH asks of one provider entry; None keeps it."""

    models: list[str] | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    expires: datetime | None = None


def etag(grant: Grant) -> str:
    return f'"{grant.id}.{grant.version}"'


def is_active(grant: Grant, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return grant.revoked_at is None and aware(grant.expires_at) > aware(now)


def own_grant(session: Session, account_id: str, grant_id: str) -> Grant | None:
    """The grant if it belongs to this account; another account's grant is never found."""
    grant = session.get(Grant, grant_id[:40])
    return grant if grant is not None and grant.account_id == account_id else None


def page_grants(
    session: Session, account_id: str, wanted: GrantFilter, cursor: str | None, limit: int
) -> tuple[list[Grant], str | None]:
    """One account's grants, newest first, filtered; raises BadCursor."""
    rows = session.exec(select(Grant).where(Grant.account_id == account_id)).all()
    rows = sorted(rows, key=lambda g: (aware(g.created_at), g.id), reverse=True)
    if cursor:
        after = decode_cursor(cursor)
        after = (aware(after[0]), after[1])
        rows = [g for g in rows if (aware(g.created_at), g.id) < after]
    now = utcnow()
    found = [
        g
        for g in rows
        if (wanted.provider is None or any(e.get("provider") == wanted.provider for e in g.details))
        and (wanted.app is None or wanted.app in (g.client_id, g.client_name))
        and (wanted.active is None or is_active(g, now) == wanted.active)
    ]
    page = found[:limit]
    more = len(found) > limit
    return page, encode_cursor(page[-1].created_at, page[-1].id) if more and page else None


def summary(grant: Grant) -> dict[str, Any]:
    return {
        "id": grant.id,
        "client_id": grant.client_id,
        "client_name": grant.client_name,
        "flow": grant.flow,
        "active": is_active(grant),
        "providers": [str(e.get("provider")) for e in grant.details],
        "created_at": stamp(grant.created_at),
        "expires_at": stamp(grant.expires_at),
        "revoked_at": stamp(grant.revoked_at),
        "last_used_at": stamp(grant.last_used_at),
    }


def detail(vault: Vault, session: Session, grant: Grant) -> dict[str, Any]:
    """Everything about one grant, with its usage against every limit."""
    report = usage_report(session, grant, vault.settings, catalog=vault.providers)
    return {
        **summary(grant),
        "client_url": grant.client_url,
        "version": grant.version,
        "authorization_details": grant.details,
        "usage": report,
    }


def _current(entry: Mapping[str, Any], defaults: DefaultLimits) -> dict[str, Any]:
    """The entry with the limits the proxy enforces today (stored, else the defaults)."""
    stored = entry.get("limits") or {}
    limits = {n: stored.get(n) for n in LIMIT_NAMES} if stored else effective_limits({}, defaults)
    return {**entry, "limits": limits}


def narrow_grant(
    vault: Vault,
    account_id: str,
    grant_id: str,
    expected_version: int,
    changes: dict[str, EntryChange],
    ip: str | None,
) -> Grant | None:
    """Narrow models, limits or expiry of some entries; None if not this account's grant.
    Raises StaleVersion, NarrowingError (nothing changed)."""
    with vault.session() as session:
        grant = own_grant(session, account_id, grant_id)
        if grant is None:
            return None
        if grant.version != expected_version:
            raise StaleVersion(grant_id)
        if grant.revoked_at is not None:
            raise NarrowingError("this grant was revoked; there is nothing to narrow")
        providers = {str(e.get("provider")) for e in grant.details}
        unknown = sorted(set(changes) - providers)
        if unknown:
            raise NarrowingError(f"{unknown[0][:40]}: not a provider of this grant")
        details: list[dict[str, Any]] = []
        recorded: dict[str, Any] = {}
        for entry in grant.details:
            provider = str(entry.get("provider"))
            change = changes.get(provider)
            if change is None:
                details.append(dict(entry))
                continue
            before = _current(entry, vault.settings.default_limits)
            choice = Narrowing(models=change.models, limits=change.limits, expires=change.expires)
            after = narrow_entry(before, choice, _NO_DEFAULTS)
            if after != before:
                recorded[provider] = {
                    k: {"from": before.get(k), "to": after.get(k)}
                    for k in ("models", "limits", "expires")
                    if before.get(k) != after.get(k)
                }
            details.append(after)
        if not recorded:
            return grant
        _record_change(
            session,
            grant,
            details,
            recorded,
            account_id=account_id,
            ip=ip,
            expires_at=grant_expiry(details),
            via="api",
        )
        session.commit()
    return grant


def _record_change(
    session: Session,
    grant: Grant,
    details: list[dict[str, Any]],
    changes: dict[str, Any],
    *,
    account_id: str,
    ip: str | None,
    expires_at: datetime | None = None,
    via: str | None = None,
) -> None:
    """Store changed entries, audit them and tell every replica at the commit (the caller
    commits). ``via`` is recorded when the change came from the API."""
    grant.details = stored(details)
    if expires_at is not None:
        grant.expires_at = expires_at
    lifecycle.changed(session, grant)
    record_event(
        session,
        "grant_limits_changed",
        account_id=account_id,
        ip=ip,
        grant_id=grant.id,
        client_id=grant.client_id,
        changes=changes,
        **({"via": via} if via is not None else {}),
    )


def revoke(vault: Vault, account_id: str, grant_id: str, ip: str | None) -> Grant | None:
    """Revoke one of this account's grants (``grants.lifecycle``: the proxy's caches hear
    of it at the commit). None if the grant is not this account's."""
    with vault.session() as session:
        grant = own_grant(session, account_id, grant_id)
        if grant is None:
            return None
        if lifecycle.revoke(session, grant, by="person", account_id=account_id, ip=ip):
            session.commit()
        return grant


def edit_limits(
    vault: Vault,
    account_id: str,
    grant_id: str,
    limits_of: Callable[[int], dict[str, float | int | None]],
    ip: str | None,
) -> Grant | None:
    """Replace the limits of every provider entry of a grant with ``limits_of(index)``
    (the dashboard reads them from its form, raising LimitsError for a bad field).

    The person may lower or raise them. Raises LimitsError (nothing changed) on bad input;
    None if the grant is not this account's."""
    with vault.session() as session:
        grant = own_grant(session, account_id, grant_id)
        if grant is None:
            return None
        if grant.revoked_at is not None:
            raise LimitsError("This app's access was revoked; there is nothing to edit.")
        details: list[dict[str, Any]] = [dict(entry) for entry in grant.details]
        changes: dict[str, Any] = {}
        for index, entry in enumerate(details):
            new = limits_of(index)
            old = {n: (entry.get("limits") or {}).get(n) for n in LIMIT_NAMES}
            if new != old:
                changes[str(entry.get("provider"))] = {"from": old, "to": new}
            entry["limits"] = new
        if not changes:
            return grant
        _record_change(session, grant, details, changes, account_id=account_id, ip=ip)
        session.commit()
    return grant
