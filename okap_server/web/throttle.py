"""Throttling guesses (passwords, device user codes) from the audit trail itself.

Failures are security events, so counting recent ones works across replicas and restarts
with no extra table and no in-process state.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, func, select

from okap_server.audit.models import SecurityEvent
from okap_server.clock import utcnow

WINDOW = timedelta(minutes=15)


def recent_failures(
    session: Session, kind: str, *, account_id: str | None = None, ip: str | None = None
) -> int:
    """Failures of ``kind`` in the last 15 minutes for an account or an IP."""
    query = (
        select(func.count())
        .select_from(SecurityEvent)
        .where(SecurityEvent.kind == kind, col(SecurityEvent.created_at) > utcnow() - WINDOW)
    )
    if account_id is not None:
        query = query.where(SecurityEvent.account_id == account_id)
    elif ip is not None:
        query = query.where(SecurityEvent.ip == ip)
    else:
        return 0
    return int(session.exec(query).one())


def is_throttled(
    session: Session, kind: str, limit: int, *, account_id: str | None, ip: str | None
) -> bool:
    """Locked when an account saw ``limit`` failures, or an IP saw twice that."""
    if account_id is not None and recent_failures(session, kind, account_id=account_id) >= limit:
        return True
    return ip is not None and recent_failures(session, kind, ip=ip) >= 2 * limit
