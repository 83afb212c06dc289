"""Pending authorization requests: create, claim, decide once, expire.

A request from any front door waits here for a person. The first signed-in account that
posts its consent form claims it (``claim``: ``decided_by`` is set while still ``pending``;
showing the page claims nothing, a GET being safe); after that only that account may see or
decide it. Deciding is one conditional UPDATE, so two tabs, two
replicas or two accounts can never both decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, delete, or_, update
from sqlmodel import Session, col, select

from okap_server.accounts.models import WebSession
from okap_server.audit.events import record_event
from okap_server.authorization.models import AuthorizationCode, AuthorizationRequest
from okap_server.clock import utcnow
from okap_server.settings import Settings

MAX_CLIENT_NAME = 100


class DecisionError(Exception):
    """The request cannot be decided (already decided, expired, another account's)."""


@dataclass(frozen=True)
class ClientInfo:
    """Who asks. Everything here is self-asserted by the app and shown as unverified."""

    client_id: str
    name: str
    url: str | None = None
    redirect_uri: str | None = None

    @property
    def redirect_host(self) -> str | None:
        return urlsplit(self.redirect_uri).hostname if self.redirect_uri else None


def create_request(
    session: Session,
    settings: Settings,
    *,
    flow: str,
    client: ClientInfo,
    details: list[dict[str, Any]],
    **fields: Any,
) -> AuthorizationRequest:
    """Add a pending request (the caller commits). ``details`` is already validated."""
    now = utcnow()
    request = AuthorizationRequest(
        flow=flow,
        client_id=client.client_id,
        client_name=client.name[:MAX_CLIENT_NAME],
        client_url=client.url,
        redirect_uri=client.redirect_uri,
        requested_details=details,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.pending_request_ttl_seconds),
        **fields,
    )
    session.add(request)
    session.flush()
    return request


def status_of(request: AuthorizationRequest, now: datetime | None = None) -> str:
    """``pending`` turns ``expired`` once its time is up, even before a sweep writes it."""
    if request.status == "pending" and request.expires_at <= (now or utcnow()):
        return "expired"
    return request.status


def claim(session: Session, request: AuthorizationRequest, account_id: str) -> bool:
    """Bind a pending request to the first account that acts on it (the consent form's POST,
    before the decision itself). True if it is this one's. The one place a claim is made."""
    if request.decided_by is None and status_of(request) == "pending":
        session.execute(
            update(AuthorizationRequest)
            .where(
                col(AuthorizationRequest.id) == request.id,
                col(AuthorizationRequest.decided_by).is_(None),
            )
            .values(decided_by=account_id)
        )
        session.commit()
        session.refresh(request)
    return request.decided_by == account_id


def pending_for(session: Session, account_id: str) -> list[AuthorizationRequest]:
    """Requests this account may decide: unclaimed ones and its own, newest first."""
    query = (
        select(AuthorizationRequest)
        .where(
            AuthorizationRequest.status == "pending",
            col(AuthorizationRequest.expires_at) > utcnow(),
            or_(
                col(AuthorizationRequest.decided_by).is_(None),
                col(AuthorizationRequest.decided_by) == account_id,
            ),
        )
        .order_by(col(AuthorizationRequest.created_at).desc())
        .limit(50)
    )
    return list(session.exec(query))


def decide(
    session: Session,
    request: AuthorizationRequest,
    account_id: str,
    *,
    approve: bool,
    granted_details: list[dict[str, Any]] | None = None,
    reason: str | None = None,
    ip: str | None = None,
) -> None:
    """Approve or deny, once. Raises DecisionError when it is no longer this account's call.

    The audit event is written in the same transaction as the decision.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "status": "approved" if approve else "denied",
        "decided_by": account_id,
        "decided_at": now,
        "granted_details": granted_details if approve else None,
        "deny_reason": None if approve else (reason or "The person denied the request."),
    }
    result = session.execute(
        update(AuthorizationRequest)
        .where(
            and_(
                col(AuthorizationRequest.id) == request.id,
                col(AuthorizationRequest.status) == "pending",
                col(AuthorizationRequest.expires_at) > now,
                or_(
                    col(AuthorizationRequest.decided_by).is_(None),
                    col(AuthorizationRequest.decided_by) == account_id,
                ),
            )
        )
        .values(**values)
    )
    if getattr(result, "rowcount", 0) != 1:
        session.rollback()
        raise DecisionError("This request was already decided, has expired, or is not yours.")
    record_event(
        session,
        "grant_approved" if approve else "grant_denied",
        account_id=account_id,
        ip=ip,
        request_id=request.id,
        client_id=request.client_id,
        client_name=request.client_name,
        flow=request.flow,
        providers=[d["provider"] for d in (granted_details or request.requested_details)],
    )
    session.commit()
    session.refresh(request)


def expire_stale(session: Session) -> int:
    """Write ``expired`` on pending requests whose time is up; returns how many."""
    result = session.execute(
        update(AuthorizationRequest)
        .where(
            col(AuthorizationRequest.status) == "pending",
            col(AuthorizationRequest.expires_at) <= utcnow(),
        )
        .values(status="expired")
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def tidy(session: Session) -> None:
    """Housekeeping, run now and then from the pages: expire stale requests, drop codes and
    browser sessions past their time (codes are kept an hour so replays are still seen)."""
    expire_stale(session)
    now = utcnow()
    session.execute(
        delete(AuthorizationCode).where(
            col(AuthorizationCode.expires_at) < now - timedelta(hours=1)
        )
    )
    session.execute(delete(WebSession).where(col(WebSession.expires_at) < now))
    session.commit()
