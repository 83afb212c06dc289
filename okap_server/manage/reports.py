"""Usage and the audit trail of one account, for the management API.

Usage is summed from the request log per grant, provider, model and UTC day; the person's
totals add each active grant's standing against its limits (``proxy.usage.usage_report``).
The audit trail is the account's security events, newest first, cursor-paged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from okap_server.audit.models import SecurityEvent
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.grants.ceilings import account_ceiling_report
from okap_server.grants.models import Grant
from okap_server.grants.usage import usage_report
from okap_server.manage.paging import aware, decode_cursor, encode_cursor, stamp
from okap_server.proxy.models import RequestLog

MAX_USAGE_ROWS = 100_000


def usage_rows(
    session: Session,
    account_id: str,
    start: datetime | None,
    end: datetime | None,
    grant_id: str | None = None,
) -> list[dict[str, Any]]:
    """Requests, tokens and cost (USD) per (grant, provider, model, day) in [start, end)."""
    query = select(RequestLog).where(RequestLog.account_id == account_id)
    if start is not None:
        query = query.where(col(RequestLog.created_at) >= aware(start))
    if end is not None:
        query = query.where(col(RequestLog.created_at) < aware(end))
    if grant_id is not None:
        query = query.where(RequestLog.grant_id == grant_id)
    buckets: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in session.exec(query.limit(MAX_USAGE_ROWS)):
        day = row.created_at.strftime("%Y-%m-%d")
        key = (row.grant_id or "", row.provider, row.model or "", day)
        bucket = buckets.setdefault(
            key,
            {
                "grant_id": row.grant_id,
                "provider": row.provider,
                "model": row.model,
                "day": day,
                "requests": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost_micros": 0,
            },
        )
        bucket["requests"] += 1
        bucket["input_tokens"] += row.input_tokens
        bucket["output_tokens"] += row.output_tokens
        bucket["cost_micros"] += row.cost_micros
    rows = sorted(buckets.values(), key=lambda b: (b["day"], b["provider"], b["model"] or ""))
    for bucket in rows:
        bucket["cost_usd"] = bucket.pop("cost_micros") / 1_000_000
    return rows


def my_usage(vault: Vault, session: Session, account_id: str) -> dict[str, Any]:
    """This month's totals, every active grant's standing against each of its limits, and
    the spend ceilings above them all: the account's (day, week, month) and each key's
    (month), each with what is used and left (``accounting.ceilings``, as the dashboard
    shows them)."""
    now = utcnow()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows = usage_rows(session, account_id, month_start, None)
    grants = session.exec(
        select(Grant).where(
            Grant.account_id == account_id,
            col(Grant.revoked_at).is_(None),
            col(Grant.expires_at) > aware(now),
        )
    ).all()
    return {
        "month": month_start.strftime("%Y-%m"),
        "totals": {
            "requests": sum(r["requests"] for r in rows),
            "input_tokens": sum(r["input_tokens"] for r in rows),
            "output_tokens": sum(r["output_tokens"] for r in rows),
            "cost_usd": round(sum(r["cost_usd"] for r in rows), 6),
        },
        "grants": [
            {
                "id": g.id,
                "client_name": g.client_name,
                "limits": usage_report(
                    session, g, vault.settings, now=now, catalog=vault.providers
                ),
            }
            for g in grants
        ],
        "ceilings": account_ceiling_report(session, account_id, now),
    }


PROXY_REQUEST = "proxy_request"


def page_requests(
    session: Session, account_id: str, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One account's proxied requests (the request log: never prompts, answers or keys),
    newest first, as ``proxy_request`` events; raises BadCursor."""
    query = select(RequestLog).where(RequestLog.account_id == account_id)
    if cursor:
        created, row_id = decode_cursor(cursor)
        created = aware(created)
        query = query.where(
            (col(RequestLog.created_at) < created)
            | ((col(RequestLog.created_at) == created) & (col(RequestLog.id) < row_id))
        )
    query = query.order_by(col(RequestLog.created_at).desc(), col(RequestLog.id).desc())
    rows = session.exec(query.limit(limit + 1)).all()
    page = rows[:limit]
    data = [
        {
            "id": r.id,
            "kind": PROXY_REQUEST,
            "created_at": stamp(r.created_at),
            "ip": None,
            "detail": {
                "grant_id": r.grant_id,
                "client_name": r.client_name,
                "provider": r.provider,
                "model": r.model,
                "endpoint": r.endpoint,
                "status": r.status,
                "error_type": r.error_type,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "cost_usd": r.cost_micros / 1_000_000,
                "latency_ms": r.latency_ms,
            },
        }
        for r in page
    ]
    more = len(rows) > limit
    return data, encode_cursor(page[-1].created_at, page[-1].id) if more and page else None


def page_events(
    session: Session, account_id: str, kind: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One account's security events, newest first (or, for ``kind=proxy_request``, its
    proxied requests); raises BadCursor."""
    if kind == PROXY_REQUEST:
        return page_requests(session, account_id, cursor, limit)
    query = select(SecurityEvent).where(SecurityEvent.account_id == account_id)
    if kind is not None:
        query = query.where(SecurityEvent.kind == kind)
    if cursor:
        created, event_id = decode_cursor(cursor)
        created = aware(created)
        query = query.where(
            (col(SecurityEvent.created_at) < created)
            | ((col(SecurityEvent.created_at) == created) & (col(SecurityEvent.id) < event_id))
        )
    query = query.order_by(col(SecurityEvent.created_at).desc(), col(SecurityEvent.id).desc())
    rows = session.exec(query.limit(limit + 1)).all()
    page = rows[:limit]
    data = [
        {
            "id": e.id,
            "kind": e.kind,
            "created_at": stamp(e.created_at),
            "ip": e.ip,
            "detail": e.detail,
        }
        for e in page
    ]
    more = len(rows) > limit
    return data, encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
