"""Issuing grants and their one ``okap_`` token, and what an app is shown of a grant.

A token is minted only at the moment it is handed over (token endpoint, device poll, OKAP
answer), because only its hash is stored: it is shown once. ``deliver`` flips
``token_delivered`` with one conditional UPDATE so an approved request yields one token,
and only while the approval is fresh and the account that approved it is not disabled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlmodel import Session, col, select

from okap_server.accounts.models import Account
from okap_server.authorization.details import parse_time
from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.reuse import reusable, rotate
from okap_server.clock import isoformat_z, utcnow
from okap_server.grants.details import stored
from okap_server.grants.models import Grant
from okap_server.grants.tokens import new_access_token, token_hash
from okap_server.webhooks import grant_events as webhook_events

HIDDEN_FIELDS = frozenset({"key_id"})


def grant_expiry(details: Sequence[Mapping[str, Any]]) -> datetime:
    """A token lives while any of its entries does; each entry also carries its own expiry."""
    times = [parse_time(d["expires"]) for d in details]
    return max(t for t in times if t is not None)


def public_details(details: Sequence[Mapping[str, Any]], public_url: str) -> list[dict[str, Any]]:
    """Granted entries as an app sees them: no key_id, plus base_url (RFC 9396 §7)."""
    shown = []
    for entry in details:
        item = {k: v for k, v in entry.items() if k not in HIDDEN_FIELDS}
        item["base_url"] = f"{public_url}/v1/{entry['provider']}"
        shown.append(item)
    return shown


def approver_is_active(session: Session, request: AuthorizationRequest) -> bool:
    """Whether the account that approved ``request`` exists and is not disabled."""
    account = session.get(Account, request.decided_by) if request.decided_by else None
    return account is not None and not account.disabled


def issue_grant(session: Session, request: AuthorizationRequest) -> tuple[Grant, str]:
    """A new grant from an approved request, and its token (the caller commits). A request
    approved to reuse a live grant (``reuse.py``) gives that grant a fresh token instead."""
    if request.status != "approved" or not request.granted_details or not request.decided_by:
        raise ValueError("only an approved request yields a grant")
    if not approver_is_active(session, request):
        raise ValueError("a disabled account's approval yields no grant")
    existing = reusable(session, request)
    if existing is not None:  # the person chose to reuse this app's grant: a fresh token
        return existing, rotate(session, existing)
    token = new_access_token()
    grant = Grant(
        account_id=request.decided_by,
        token_hash=token_hash(token),
        client_id=request.client_id,
        client_name=request.client_name,
        client_url=request.client_url,
        redirect_host=urlsplit(request.redirect_uri).hostname if request.redirect_uri else None,
        flow=request.flow,
        details=stored(request.granted_details),
        expires_at=grant_expiry(request.granted_details),
        delegation_allowed=request.delegation_allowed,
    )
    session.add(grant)
    session.flush()
    request.grant_id = grant.id
    session.add(request)
    webhook_events.granted(session, grant, request_id=request.id)
    return grant, token


def deliver(session: Session, request: AuthorizationRequest) -> tuple[Grant, str] | None:
    """Issue the token of an approved request exactly once; None if there is none to give:
    delivered already, the approval lapsed uncollected, or its account is disabled."""
    active = select(Account.id).where(col(Account.disabled).is_(False))
    result = session.execute(
        update(AuthorizationRequest)
        .where(
            col(AuthorizationRequest.id) == request.id,
            col(AuthorizationRequest.status) == "approved",
            col(AuthorizationRequest.token_delivered).is_(False),
            col(AuthorizationRequest.expires_at) > utcnow(),
            col(AuthorizationRequest.decided_by).in_(active),
        )
        .values(token_delivered=True)
    )
    if getattr(result, "rowcount", 0) != 1:
        session.rollback()
        return None
    session.refresh(request)
    issued = issue_grant(session, request)
    session.commit()
    return issued


def token_response(grant: Grant, token: str, public_url: str) -> dict[str, Any]:
    """RFC 6749 §5.1 plus the granted ``authorization_details`` (RFC 9396 §7)."""
    expires_in = max(0, int((grant.expires_at - utcnow()).total_seconds()))
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "authorization_details": public_details(grant.details, public_url),
    }


def okap_grant_body(grant: Grant, token: str, public_url: str) -> dict[str, Any]:
    """The OKAP v1.0 binding's ``granted`` answer."""
    return {
        "okap": "1.0",
        "status": "granted",
        "token": token,
        "token_type": "Bearer",
        "expires_at": isoformat_z(grant.expires_at),
        "authorization_details": public_details(grant.details, public_url),
    }
