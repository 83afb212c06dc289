"""The activity log: proxied requests and security events of one account, filtered,
newest first, and exported as CSV. Never prompts, answers or secrets: the tables hold none."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from okap_server.audit.models import SecurityEvent
from okap_server.authorization.models import Grant
from okap_server.clock import utcnow
from okap_server.dashboard import formatting as fmt
from okap_server.proxy.models import RequestLog

PERIODS: dict[str, tuple[str, timedelta | None]] = {
    "hour": ("Last hour", timedelta(hours=1)),
    "day": ("Last 24 hours", timedelta(days=1)),
    "week": ("Last 7 days", timedelta(days=7)),
    "month": ("Last 30 days", timedelta(days=30)),
    "all": ("All time", None),
}
STATUSES = {"all": "Any status", "ok": "Succeeded", "failed": "Failed or refused"}
KINDS = {
    "all": "Everything",
    "requests": "Requests only",
    "security": "Security events only",
}
FAILED_EVENTS = frozenset({"signin_failed", "grant_denied", "code_replayed", "user_code_failed"})
EVENT_STATUS = {"grant_denied": "denied", "code_replayed": "blocked"}
VIA_TEXT = {
    "setup_link": "the setup link",
    "cli": "the command line",
    "dashboard": "the dashboard",
    "api": "the management API",
}
CSV_COLUMNS = (
    "time",
    "type",
    "app",
    "provider",
    "model",
    "status",
    "description",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "ip",
)


@dataclass(frozen=True)
class Filters:
    app: str = ""
    provider: str = ""
    status: str = "all"
    period: str = "week"
    kind: str = "all"

    @classmethod
    def from_query(cls, query: dict[str, str]) -> Filters:
        def pick(name: str, allowed: Iterable[str], default: str) -> str:
            value = query.get(name, default)
            return value if value in allowed else default

        return cls(
            app=query.get("app", "")[:40],
            provider=query.get("provider", "")[:32],
            status=pick("status", STATUSES, "all"),
            period=pick("period", PERIODS, "week"),
            kind=pick("kind", KINDS, "all"),
        )

    def since(self, now: datetime) -> datetime | None:
        span = PERIODS[self.period][1]
        return None if span is None else now - span


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # "request" | "security"
    app: str
    provider: str
    model: str
    status: str
    ok: bool
    description: str
    cost: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: int | None = None
    ip: str = ""
    cost_usd: float | None = None

    @property
    def when(self) -> str:
        return fmt.timestamp(self.at)


EVENT_TEXT: dict[str, str] = {
    "signin": "Signed in",
    "signin_failed": "Failed sign-in",
    "signout": "Signed out",
    "account_created": "Account created",
    "account_disabled": "Account disabled",
    "account_enabled": "Account enabled",
    "account_removed": "Account removed",
    "password_changed": "Password changed",
    "key_added": "Key added",
    "key_removed": "Key removed",
    "key_default_changed": "Default key changed",
    "grant_approved": "Access approved",
    "grant_denied": "Access denied",
    "grant_revoked": "Access revoked",
    "grant_delegated": "Delegated a narrower token",
    "grant_limits_changed": "Limits changed",
    "token_regenerated": "Token regenerated (the old one was revoked)",
    "key_changed": "Key changed",
    "code_replayed": "Authorization code reused (the app's access was revoked)",
    "user_code_failed": "Wrong device code",
    "master_key_rotated": "Master key rotated",
    "vault_imported": "Vault imported",
}


def _event_entry(event: SecurityEvent, names: dict[str, str]) -> Entry:
    detail: dict[str, Any] = event.detail or {}
    text = EVENT_TEXT.get(event.kind, event.kind)
    app = str(detail.get("client_name") or names.get(str(detail.get("grant_id")), "") or "")
    extra = []
    if event.kind.startswith("key_"):
        extra.append(
            f"{detail.get('provider', '')} “{detail.get('label', '')}” "
            f"({detail.get('hint', '')})".strip()
        )
    if event.kind == "grant_revoked" and detail.get("by"):
        by = str(detail["by"])
        extra.append(
            "by the app itself"
            if by == "app"
            else "with the grant it was delegated from"
            if by == "cascade"
            else f"by {by}"
        )
    if detail.get("via"):
        extra.append(f"via {VIA_TEXT.get(str(detail['via']), detail['via'])}")
    joiner = ": " if event.kind.startswith("key_") else " "
    description = text + (joiner + ", ".join(e for e in extra if e) if extra else "")
    providers = detail.get("providers")
    provider = (
        ", ".join(providers) if isinstance(providers, list) else str(detail.get("provider") or "")
    )
    return Entry(
        at=fmt.aware(event.created_at),
        kind="security",
        app=app,
        provider=provider,
        model="",
        status=EVENT_STATUS.get(event.kind, "failed" if event.kind in FAILED_EVENTS else "ok"),
        ok=event.kind not in FAILED_EVENTS,
        description=description,
        cost="",
        ip=event.ip or "",
    )


def _request_entry(row: RequestLog, names: dict[str, str]) -> Entry:
    ok = 200 <= row.status < 400
    description = f"{row.endpoint}" + (f" ({row.error_type})" if row.error_type else "")
    return Entry(
        at=fmt.aware(row.created_at),
        kind="request",
        app=row.client_name or names.get(row.grant_id or "", ""),
        provider=row.provider,
        model=row.model or "",
        status=str(row.status),
        ok=ok,
        description=description,
        cost=fmt.usd(row.cost_micros / 1_000_000),
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        latency_ms=round(row.latency_ms),
        cost_usd=row.cost_micros / 1_000_000,
    )


def app_names(session: Session, account_id: str) -> dict[str, str]:
    rows = session.exec(
        select(Grant.id, Grant.client_name)
        .where(Grant.account_id == account_id)
        .order_by(col(Grant.created_at).desc())
    ).all()
    return dict(rows)


def entries(
    session: Session, account_id: str, filters: Filters, *, limit: int = 200
) -> list[Entry]:
    now = utcnow()
    since = filters.since(now)
    names = app_names(session, account_id)
    found: list[Entry] = []
    if filters.kind in ("all", "requests"):
        query = select(RequestLog).where(RequestLog.account_id == account_id)
        if since is not None:
            query = query.where(col(RequestLog.created_at) >= since)
        if filters.app:
            query = query.where(RequestLog.grant_id == filters.app)
        if filters.provider:
            query = query.where(RequestLog.provider == filters.provider)
        if filters.status == "ok":
            query = query.where(col(RequestLog.status) < 400)
        elif filters.status == "failed":
            query = query.where(col(RequestLog.status) >= 400)
        rows = session.exec(query.order_by(col(RequestLog.created_at).desc()).limit(limit))
        found.extend(_request_entry(r, names) for r in rows)
    if filters.kind in ("all", "security"):
        query2 = select(SecurityEvent).where(SecurityEvent.account_id == account_id)
        if since is not None:
            query2 = query2.where(col(SecurityEvent.created_at) >= since)
        if filters.status == "failed":
            query2 = query2.where(col(SecurityEvent.kind).in_(sorted(FAILED_EVENTS)))
        elif filters.status == "ok":
            query2 = query2.where(col(SecurityEvent.kind).not_in(sorted(FAILED_EVENTS)))
        events = session.exec(query2.order_by(col(SecurityEvent.created_at).desc()).limit(limit))
        for event in events:
            detail = event.detail or {}
            if filters.app and detail.get("grant_id") != filters.app:
                continue
            if filters.provider and filters.provider not in (
                detail.get("provider"),
                *(detail.get("providers") or []),
            ):
                continue
            found.append(_event_entry(event, names))
    found.sort(key=lambda e: e.at, reverse=True)
    return found[:limit]


def to_csv(rows: list[Entry]) -> str:
    """RFC 4180 CSV; cells that a spreadsheet would run as a formula are quoted with '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in rows:
        cells = [
            e.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            e.kind,
            e.app,
            e.provider,
            e.model,
            e.status,
            e.description,
            "" if e.cost_usd is None else f"{e.cost_usd:.6f}",
            "" if e.input_tokens is None else e.input_tokens,
            "" if e.output_tokens is None else e.output_tokens,
            "" if e.latency_ms is None else e.latency_ms,
            e.ip,
        ]
        writer.writerow([_safe_cell(c) for c in cells])
    return out.getvalue()


def _safe_cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
