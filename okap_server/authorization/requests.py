"""Pending authorization requests: create, claim, decide once, expire.

A request from any front door waits here for a person, and is decided by one account
only: the one that claimed it (``decided_by``, set while still ``pending``, by ``claim``).

- A device request (RFC 8628) is claimed when an account types its user code at
  ``/device``, and only then: nothing else can claim it, so the user code cannot be
  bypassed from a list or a guessed consent URL.
- Any other request is claimed by the first signed-in account that acts on its consent
  page by a POST (approve, deny, or a choice the page refused), or approves or denies it
  from the Pending list. Showing the page (GET) claims nothing (RFC 9110 §9.2.1).

Claiming is one conditional UPDATE (``... WHERE decided_by IS NULL``), and deciding is
another that needs the claim, so two tabs, two replicas or two accounts can never both
decide. An approval must be collected within ``Settings.approval_ttl_seconds``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, case, delete, or_, update
from sqlmodel import Session, col, func, select

from okap_server.accounts.models import Account, WebSession
from okap_server.audit.events import record_event
from okap_server.authorization.capacity import Caller, check_room
from okap_server.authorization.details import RequestedDetails
from okap_server.authorization.models import AuthorizationCode, AuthorizationRequest
from okap_server.clock import utcnow
from okap_server.settings import Settings
from okap_server.webhooks import grant_events as webhook_events

MAX_CLIENT_NAME = 100


class DecisionError(Exception):
    """The request cannot be decided (already decided, expired, another account's)."""


class RequestGone(DecisionError):
    """Decided already, or expired; ``status`` says which."""

    def __init__(self, status: str) -> None:
        self.status = status
        super().__init__(f"This request is {status}.")


class NotYourRequest(DecisionError):
    """Another account claimed it. Nothing more is said about it (not even its status)."""

    def __init__(self, message: str = "Another account of this vault is deciding this request."):
        super().__init__(message)


class UserCodeRequired(NotYourRequest):
    """A device request is this account's only once it typed the device's user code."""

    def __init__(self) -> None:
        super().__init__(
            "Enter the code shown on the device at /device first: only the account that "
            "entered it may decide a device's request."
        )


WITHDRAWN_REASON = "The account that was deciding this request was disabled."


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
    details: RequestedDetails,
    caller: Caller,
    **fields: Any,
) -> AuthorizationRequest:
    """Add a pending request (the caller commits). ``details`` is already validated, and
    says which expiries the app named (``expiry_asked``, shown on the consent page).

    ``caller`` says where it came from; a request over a rate limit or a flood cap is refused
    here, before anything is stored (``capacity.py``).
    """
    check_room(session, settings, flow=flow, client_id=client.client_id, caller=caller)
    now = utcnow()
    request = AuthorizationRequest(
        flow=flow,
        client_id=client.client_id,
        client_name=client.name[:MAX_CLIENT_NAME],
        client_url=client.url,
        redirect_uri=client.redirect_uri,
        requested_details=details.entries,
        expiry_asked=details.expiry_asked,
        source=caller.source,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.pending_request_ttl_seconds),
        **fields,
    )
    session.add(request)
    session.flush()
    webhook_events.access_requested(session, request)
    return request


def _lapses(request: AuthorizationRequest) -> bool:
    """Whether ``expires_at`` still bounds this request: while it waits for a person, and
    after approval until its token is collected (then the grant's own expiry rules)."""
    return request.status == "pending" or (
        request.status == "approved" and not request.token_delivered
    )


def status_of(request: AuthorizationRequest, now: datetime | None = None) -> str:
    """``pending``, and ``approved`` but uncollected, turn ``expired`` once
    ``expires_at`` is past, even before a sweep writes it."""
    if _lapses(request) and request.expires_at <= (now or utcnow()):
        return "expired"
    return request.status


def check_may_decide(request: AuthorizationRequest, account_id: str) -> None:
    """Raise unless ``account_id`` may see and decide ``request`` now. No side effect:
    used to show the consent page, and by ``claim`` before it writes."""
    if request.decided_by not in (None, account_id):
        raise NotYourRequest()
    if request.flow == "device" and request.decided_by != account_id:
        raise UserCodeRequired()
    status = status_of(request)
    if status != "pending":
        raise RequestGone(status)


def claim(
    session: Session,
    request: AuthorizationRequest,
    account_id: str,
    *,
    by_user_code: bool = False,
) -> None:
    """Bind a pending request to ``account_id``, or raise if it is not this account's call.

    The one place a request gets its decider: every decision path (the consent page's
    POST, the Pending list, ``/device``) calls it before ``decide``. ``by_user_code`` is
    for ``/device`` only: typing the user code is how a device request is claimed.
    """
    if request.decided_by not in (None, account_id):
        raise NotYourRequest()
    if not by_user_code:
        check_may_decide(request, account_id)
    elif status_of(request) != "pending":
        raise RequestGone(status_of(request))
    if request.decided_by == account_id:
        return
    now = utcnow()
    session.execute(
        update(AuthorizationRequest)
        .where(
            col(AuthorizationRequest.id) == request.id,
            col(AuthorizationRequest.decided_by).is_(None),
            col(AuthorizationRequest.status) == "pending",
            col(AuthorizationRequest.expires_at) > now,
        )
        .values(decided_by=account_id)
    )
    session.commit()
    session.refresh(request)
    if request.decided_by != account_id:
        raise NotYourRequest() if request.decided_by else RequestGone(status_of(request))


def _only_active_account(session: Session, account_id: str) -> bool:
    active = session.exec(
        select(func.count())
        .select_from(Account)
        .where(col(Account.disabled).is_(False), col(Account.id) != account_id)
    ).one()
    return int(active) == 0


def fair_order() -> tuple[Any, ...]:
    """ORDER BY for a list of requests that no flood can take over: each source's newest and
    each client id's newest come first, then each one's second newest, and so on, newest
    first within a round. A source, or a client id from any number of sources, sending
    hundreds of requests only pushes its own further requests down the list."""
    newest_first = col(AuthorizationRequest.created_at).desc()
    of_source = func.row_number().over(
        partition_by=col(AuthorizationRequest.source), order_by=newest_first
    )
    of_client = func.row_number().over(
        partition_by=col(AuthorizationRequest.client_id), order_by=newest_first
    )
    round_ = case((of_source > of_client, of_source), else_=of_client)
    return round_, newest_first


def pending_for(session: Session, account_id: str) -> list[AuthorizationRequest]:
    """Requests to list for this account, in ``fair_order``: the ones it claimed, and in a vault
    with no other active account also the unclaimed ones (no one else could take them).
    An unclaimed request is never listed in a team vault: its consent link is the only way
    to it, and a device request is listed only after its user code was typed."""
    mine = col(AuthorizationRequest.decided_by) == account_id
    if _only_active_account(session, account_id):
        mine = or_(
            mine,
            and_(
                col(AuthorizationRequest.decided_by).is_(None),
                col(AuthorizationRequest.flow) != "device",
            ),
        )
    query = (
        select(AuthorizationRequest)
        .where(
            AuthorizationRequest.status == "pending",
            col(AuthorizationRequest.expires_at) > utcnow(),
            mine,
        )
        .order_by(*fair_order())
        .limit(50)
    )
    return list(session.exec(query))


def decide(
    session: Session,
    request: AuthorizationRequest,
    account_id: str,
    *,
    approve: bool,
    collect_seconds: int,
    granted_details: Sequence[Mapping[str, Any]] | None = None,
    reason: str | None = None,
    ip: str | None = None,
    reuse_grant_id: str | None = None,
    delegation_allowed: bool | None = None,
) -> None:
    """Approve or deny, once, a request this account claimed (``claim`` first). Raises
    DecisionError when it is no longer this account's call.

    ``reuse_grant_id``: approve by reusing this live grant of the app (``reuse.py``); it is
    written in the same UPDATE as the decision, so no poll can mint a new grant meanwhile.

    An approval's token must be collected within ``collect_seconds`` (``expires_at`` is
    moved there), as an authorization code must be redeemed soon (RFC 6749 §4.1.2): an
    app that never comes back does not leave a token waiting to be minted later.
    The audit event is written in the same transaction as the decision.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "status": "approved" if approve else "denied",
        "decided_at": now,
        "granted_details": [dict(d) for d in granted_details]
        if approve and granted_details is not None
        else None,
        "deny_reason": None if approve else (reason or "The person denied the request."),
    }
    if approve:
        values["expires_at"] = now + timedelta(seconds=collect_seconds)
        if delegation_allowed is not None:  # the person's choice (never wider than asked)
            values["delegation_allowed"] = delegation_allowed and request.delegation_allowed
        if reuse_grant_id is not None:
            values["grant_id"] = reuse_grant_id
    result = session.execute(
        update(AuthorizationRequest)
        .where(
            and_(
                col(AuthorizationRequest.id) == request.id,
                col(AuthorizationRequest.status) == "pending",
                col(AuthorizationRequest.expires_at) > now,
                col(AuthorizationRequest.decided_by) == account_id,
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
        **({"reused_grant_id": reuse_grant_id} if approve and reuse_grant_id else {}),
    )
    webhook_events.decided(
        session,
        request,
        account_id,
        approve=approve,
        granted_details=granted_details,
        reuse_grant_id=reuse_grant_id,
        reason=reason,
    )
    session.commit()
    session.refresh(request)


def withdraw_for_account(session: Session, account_id: str) -> int:
    """Deny what a disabled account claimed or approved and no app collected yet, so no
    token is ever minted from its decisions (the caller commits with the disabling)."""
    result = session.execute(
        update(AuthorizationRequest)
        .where(
            col(AuthorizationRequest.decided_by) == account_id,
            col(AuthorizationRequest.status).in_(["pending", "approved"]),
            col(AuthorizationRequest.token_delivered).is_(False),
        )
        .values(status="denied", granted_details=None, deny_reason=WITHDRAWN_REASON)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def expire_stale(session: Session) -> int:
    """Write ``expired`` on pending requests, and approvals never collected, whose time is
    up; returns how many."""
    result = session.execute(
        update(AuthorizationRequest)
        .where(
            or_(
                col(AuthorizationRequest.status) == "pending",
                and_(
                    col(AuthorizationRequest.status) == "approved",
                    col(AuthorizationRequest.token_delivered).is_(False),
                ),
            ),
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
