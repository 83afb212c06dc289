"""How long finished requests are kept: long enough to answer the app's last poll, no longer.

Every front door stores a row before anyone has signed in, so rows that can no longer be
used must go, or a flood (or plain years of use) fills the database. Run by the housekeeping
loop on every replica; each statement is idempotent, so replicas may run it at once.

- A pushed request (RFC 9126) whose ``request_uri`` expired unused can never reach its
  consent page the way the app meant it to: it is expired at once, not after the pending
  lifetime, so it leaves the Pending list.
- A request of any status is deleted ``KEPT_AFTER_EXPIRY`` after its ``expires_at``, once
  no authorization code of it is left (codes are kept an hour past their own expiry so a
  replay is still recognised, ``requests.tidy``). Until then a late device poll still gets
  ``expired_token`` and a late OKAP poll ``denied``; after it, ``invalid_grant``.
  Device codes, user codes, request URIs and poll handles live on these rows, so they go
  with them. What was decided stays in the security audit trail.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, exists, update
from sqlmodel import Session, col

from okap_server.authorization.models import AuthorizationCode, AuthorizationRequest
from okap_server.clock import utcnow
from okap_server.settings import Settings

KEPT_AFTER_EXPIRY = timedelta(minutes=15)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def expire_unused_pushes(session: Session, settings: Settings, now: datetime) -> int:
    """Expire pending pushed requests whose ``request_uri`` was never used in time."""
    request = AuthorizationRequest
    result = session.execute(
        update(request)
        .where(
            col(request.status) == "pending",
            col(request.request_uri_hash).is_not(None),
            col(request.request_uri_used).is_(False),
            col(request.created_at) <= now - timedelta(seconds=settings.par_ttl_seconds),
        )
        .values(status="expired", expires_at=now)
    )
    return _count(result)


def delete_finished(session: Session, now: datetime) -> int:
    """Delete requests past ``expires_at`` + ``KEPT_AFTER_EXPIRY`` with no code left."""
    request = AuthorizationRequest
    has_code = exists().where(col(AuthorizationCode.request_id) == col(request.id))
    result = session.execute(
        delete(request).where(
            col(request.expires_at) < now - KEPT_AFTER_EXPIRY,
            ~has_code,
        )
    )
    return _count(result)


def purge(session: Session, settings: Settings) -> int:
    """One round: expire unused pushes, delete finished requests; returns rows deleted."""
    now = utcnow()
    expire_unused_pushes(session, settings, now)
    deleted = delete_finished(session, now)
    session.commit()
    return deleted
