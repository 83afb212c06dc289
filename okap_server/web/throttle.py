"""Throttling guesses (passwords, device user codes) from the audit trail itself.

Failures are security events, so counting recent ones works across replicas and restarts
with no extra table and no in-process state. A key (an address, an account on an address,
a browser) may fail a number of times in ``WINDOW``; past that it waits ``backoff``: a
minute after its last failure, doubling with each further failure, at most ``WINDOW``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from okap_server.audit.models import SecurityEvent
from okap_server.clock import utcnow

WINDOW = timedelta(minutes=15)
BACKOFF_BASE = timedelta(minutes=1)


@dataclass(frozen=True)
class Failures:
    """How often a key failed within ``WINDOW``, and when it last did."""

    count: int
    last: datetime | None


NONE = Failures(0, None)


def failures(session: Session, kind: str, *where: Any) -> Failures:
    """Failures of ``kind`` in the last ``WINDOW`` matching every condition in ``where``."""
    count, last = session.exec(
        select(func.count(), func.max(SecurityEvent.created_at)).where(
            SecurityEvent.kind == kind,
            col(SecurityEvent.created_at) > utcnow() - WINDOW,
            *where,
        )
    ).one()
    return Failures(int(count), last)


def backoff(failed: Failures, allowed: int, now: datetime | None = None) -> float:
    """Seconds still to wait: none below ``allowed`` failures, then exponential (module doc)."""
    if failed.count < allowed or failed.last is None:
        return 0.0
    doublings = min(failed.count - allowed, 16)
    wait = min(WINDOW, BACKOFF_BASE * (1 << doublings))
    return max(0.0, (failed.last + wait - (now or utcnow())).total_seconds())


def recent_failures(
    session: Session, kind: str, *, account_id: str | None = None, ip: str | None = None
) -> int:
    """Failures of ``kind`` in the last 15 minutes for an account or an IP."""
    if account_id is not None:
        return failures(session, kind, SecurityEvent.account_id == account_id).count
    if ip is not None:
        return failures(session, kind, SecurityEvent.ip == ip).count
    return 0


def is_throttled(
    session: Session, kind: str, limit: int, *, account_id: str | None, ip: str | None
) -> bool:
    """Locked when an account saw ``limit`` failures, or an IP saw twice that."""
    if account_id is not None and recent_failures(session, kind, account_id=account_id) >= limit:
        return True
    return ip is not None and recent_failures(session, kind, ip=ip) >= 2 * limit
