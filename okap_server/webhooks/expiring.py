"""``grant.expiring``: a notice 7 days before a live grant ends, written once per grant
and expiry (the event's ``dedupe_key``), by whichever replica's worker gets there first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from okap_server.authorization.models import Grant
from okap_server.clock import isoformat_z
from okap_server.webhooks.events import emit, grant_data, limits_of
from okap_server.webhooks.outbox import ENDPOINT

NOTICE = timedelta(days=7)
GRANT: Any = Grant.__table__  # type: ignore[attr-defined]


def note_expiring(engine: Engine, now: datetime) -> int:
    """Write the notices due now, for accounts with an endpoint; how many were new."""
    written = 0
    with engine.begin() as conn:
        accounts = select(ENDPOINT.c.account_id).where(ENDPOINT.c.disabled_at.is_(None))
        rows = conn.execute(
            select(
                GRANT.c.id,
                GRANT.c.account_id,
                GRANT.c.client_id,
                GRANT.c.client_name,
                GRANT.c.details,
                GRANT.c.expires_at,
            ).where(
                GRANT.c.revoked_at.is_(None),
                GRANT.c.expires_at > now,
                GRANT.c.expires_at <= now + NOTICE,
                GRANT.c.account_id.in_(accounts),
            )
        ).all()
        for grant_id, account_id, client_id, client_name, details, expires_at in rows:
            expires = isoformat_z(expires_at)
            data = grant_data(
                grant_id,
                client_id,
                client_name,
                [str(e.get("provider")) for e in details or []],
                expires_at=expires,
                access=limits_of(details or []),
            )
            key = f"grant.expiring:{grant_id}:{expires}"
            if emit(conn, "grant.expiring", account_id, data, dedupe_key=key, now=now):
                written += 1
    return written
