"""An app's usage from the request audit: per day for the chart, per model, and the most
recent requests. Read-only; the caller has already checked the grant is the account's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select as sql_select
from sqlmodel import Session, col, func, select

from okap_server.clock import utcnow
from okap_server.dashboard import formatting as fmt
from okap_server.proxy.models import RequestLog


@dataclass(frozen=True)
class ModelUsage:
    provider: str
    model: str
    requests: int
    spend: str
    tokens: str


def usage_by_model(session: Session, grant_id: str) -> list[ModelUsage]:
    rows = session.execute(
        sql_select(
            col(RequestLog.provider),
            col(RequestLog.model),
            func.count(),
            func.coalesce(func.sum(RequestLog.cost_micros), 0),
            func.coalesce(func.sum(RequestLog.input_tokens), 0),
            func.coalesce(func.sum(RequestLog.output_tokens), 0),
        )
        .where(col(RequestLog.grant_id) == grant_id)
        .group_by(col(RequestLog.provider), col(RequestLog.model))
        .order_by(func.count().desc())
    ).all()
    return [
        ModelUsage(
            provider=provider,
            model=model or "(none)",
            requests=int(n),
            spend=fmt.usd(int(cost) / 1_000_000),
            tokens=f"{int(tin):,} in / {int(tout):,} out",
        )
        for provider, model, n, cost, tin, tout in rows
    ]


def recent_requests(session: Session, grant_id: str, limit: int = 20) -> list[RequestLog]:
    return list(
        session.exec(
            select(RequestLog)
            .where(RequestLog.grant_id == grant_id)
            .order_by(col(RequestLog.created_at).desc())
            .limit(limit)
        )
    )


def daily_usage(
    session: Session, grant_id: str, days: int = 30, now: datetime | None = None
) -> list[tuple[str, float, int]]:
    """(``YYYY-MM-DD``, spend USD, requests) for each of the last ``days`` UTC days."""
    now = now or utcnow()
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = session.exec(
        select(RequestLog.created_at, RequestLog.cost_micros).where(
            RequestLog.grant_id == grant_id, col(RequestLog.created_at) >= start
        )
    ).all()
    buckets: dict[str, list[int]] = {}
    for offset in range(days):
        buckets[(start + timedelta(days=offset)).strftime("%Y-%m-%d")] = [0, 0]
    for created, cost in rows:
        bucket = buckets.get(fmt.aware(created).strftime("%Y-%m-%d"))
        if bucket is not None:
            bucket[0] += int(cost)
            bucket[1] += 1
    return [(day, micros / 1_000_000, n) for day, (micros, n) in buckets.items()]


@dataclass(frozen=True)
class SpendTotal:
    month: str
    today: str
    requests: int


def spend_total(session: Session, account_id: str, now: datetime | None = None) -> SpendTotal:
    """What all of the account's apps spent this month and today (UTC), from the audit.

    Shown at the top of Apps: per-app bars answer "which app", this answers "how much"."""
    now = now or utcnow()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = col(RequestLog.account_id) == account_id
    month, requests = session.execute(
        sql_select(func.coalesce(func.sum(RequestLog.cost_micros), 0), func.count()).where(
            mine, col(RequestLog.created_at) >= month_start
        )
    ).one()
    today = session.execute(
        sql_select(func.coalesce(func.sum(RequestLog.cost_micros), 0)).where(
            mine, col(RequestLog.created_at) >= day_start
        )
    ).scalar_one()
    return SpendTotal(fmt.usd(int(month) / 1e6), fmt.usd(int(today) / 1e6), int(requests))
