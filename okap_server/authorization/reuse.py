"""An app that asks again for access it already holds: find that grant, and reuse it.

An app that lost its token (a new machine, a cleared cache, the SDK's ``request_access`` run
twice) asks again with the same request. Approving would mint a second grant beside the
first: two tokens, two budgets, two cards for one app. So the consent page says the app
already has this access and offers to reuse it.

Reusing approves the request with the existing grant's own details and records that grant's
id on the request (``decide(..., reuse_grant_id=...)``, in the same UPDATE as the decision,
so no poll can mint a grant in between). When the token is handed over, ``issue_grant``
gives that grant a fresh token instead of minting a new grant (``rotate``): the spend so far
and the limits stay as they were, and the token given before stops working (a grant has one
token; the proxy's grant cache holds the old one at most ``proxy_grant_cache_seconds``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session, col, select

from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.requests import decide
from okap_server.clock import utcnow
from okap_server.grants import lifecycle
from okap_server.grants.models import Grant
from okap_server.grants.tokens import new_access_token, token_hash


def _same_entry(granted: Mapping[str, Any], asked: Mapping[str, Any]) -> bool:
    """The granted entry is what this ask would get as asked: same models and
    capabilities, and every limit the app named at the value it named."""
    if sorted(granted.get("models") or []) != sorted(asked.get("models") or []):
        return False
    if sorted(granted.get("capabilities") or []) != sorted(asked.get("capabilities") or []):
        return False
    given = granted.get("limits") or {}
    return all(
        given.get(name) == value
        for name, value in (asked.get("limits") or {}).items()
        if value is not None
    )


def same_access(granted: Sequence[Mapping[str, Any]], asked: Sequence[Mapping[str, Any]]) -> bool:
    """Does a grant with ``granted`` details already answer a request for ``asked``?"""
    by_provider = {entry["provider"]: entry for entry in granted}
    if set(by_provider) != {entry["provider"] for entry in asked}:
        return False
    return all(_same_entry(by_provider[entry["provider"]], entry) for entry in asked)


def live_grant_like(
    session: Session, account_id: str, request: AuthorizationRequest
) -> Grant | None:
    """The newest unrevoked, unexpired grant of this account to the same client that
    answers ``request`` as asked; None when there is none."""
    rows = session.exec(
        select(Grant)
        .where(
            col(Grant.account_id) == account_id,
            col(Grant.client_id) == request.client_id,
            col(Grant.revoked_at).is_(None),
            col(Grant.expires_at) > utcnow(),
            col(Grant.ancestry).is_(None),  # a delegated token is its parent's, not the app's
        )
        .order_by(col(Grant.created_at).desc())
    ).all()
    for grant in rows:
        if same_access(grant.details, request.requested_details):
            return grant
    return None


class ReuseGone(Exception):
    """The grant offered for reuse is no longer this app's live access for this request."""

    def __init__(self) -> None:
        super().__init__(
            "The access this app had is gone (revoked or expired). Approve it anew, or deny."
        )


def approve_by_reuse(
    session: Session,
    request: AuthorizationRequest,
    account_id: str,
    offered_grant_id: str,
    *,
    collect_seconds: int,
    ip: str | None,
    delegation_allowed: bool | None = None,
) -> Grant:
    """Approve a claimed ``request`` by reusing the live grant the page offered: the one
    decision path for the consent page and the dashboard's pending list.

    The offer is checked again here: a grant revoked, expired or replaced since the page
    was shown is not reused (``ReuseGone``), so the person decides anew. Raises
    ``DecisionError`` (via ``decide``) when the request is no longer this account's call.

    ``delegation_allowed``: the page's "may hand narrower tokens on" box (None: no box). It
    can only narrow: unticked, or forbidden by the app's request, the reused grant may no
    longer be delegated (children it already has are left alone, as when it is edited)."""
    existing = live_grant_like(session, account_id, request)
    if existing is None or existing.id != offered_grant_id:
        raise ReuseGone()
    decide(
        session,
        request,
        account_id,
        approve=True,
        collect_seconds=collect_seconds,
        granted_details=existing.details,
        ip=ip,
        reuse_grant_id=existing.id,
        delegation_allowed=delegation_allowed,
    )
    narrowed = delegation_allowed is False or not request.delegation_allowed
    if narrowed and existing.delegation_allowed:
        existing.delegation_allowed = False
        lifecycle.changed(session, existing)
    return existing


def reusable(session: Session, request: AuthorizationRequest) -> Grant | None:
    """The grant an approved request said to reuse, if it is still live and the approver's."""
    if not request.grant_id:
        return None
    grant = session.get(Grant, request.grant_id)
    if (
        grant is None
        or grant.account_id != request.decided_by
        or grant.revoked_at is not None
        or grant.expires_at <= utcnow()
    ):
        return None
    return grant


def rotate(session: Session, grant: Grant) -> str:
    """Give ``grant`` a new token (returned; only its hash is stored), and revoke every
    token delegated from it: whoever held the old token (a leaker, when the person
    regenerates it) may have exchanged it, and those children must end with it (RFC 8693
    §1.1: a delegated token acts for its subject). The caller commits."""
    token = new_access_token()
    grant.token_hash = token_hash(token)
    lifecycle.changed(session, grant)  # the old token's cached view goes at the commit
    lifecycle.revoke_descendants(session, grant)
    return token
