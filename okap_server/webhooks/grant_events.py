"""The hook points where the authorization server's changes become webhook events.

Each adds its event to the caller's session, so it commits with the change (a request
stored, a decision, a revocation) or not at all. Small and named for what happened, so
the lifecycle code can call them from wherever a change is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from okap_server.accounts.models import Account
from okap_server.clock import isoformat_z
from okap_server.webhooks.events import emit, grant_data, limits_of

if TYPE_CHECKING:  # read, never queried: this module sits below the grants and the core
    from okap_server.authorization.models import AuthorizationRequest
    from okap_server.grants.models import Grant


def _providers(details: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(d.get("provider")) for d in details]


def _sole_account(session: Session) -> str | None:
    """The one active account of a personal vault: who an unclaimed request is for."""
    ids = session.exec(select(Account.id).where(col(Account.disabled).is_(False)).limit(2)).all()
    return ids[0] if len(ids) == 1 else None


def access_requested(session: Session, request: AuthorizationRequest) -> None:
    """``access.requested``: for the account that claimed it, or a personal vault's only
    account (in a team vault an unclaimed request is nobody's yet)."""
    account_id = request.decided_by or _sole_account(session)
    if account_id is None:
        return
    details = request.requested_details
    emit(
        session,
        "access.requested",
        account_id,
        {
            "request_id": request.id,
            "app": {"client_id": request.client_id, "name": request.client_name or ""},
            "flow": request.flow,
            "providers": _providers(details),
            "access": limits_of(details),
            "expires_at": isoformat_z(request.expires_at),
        },
    )


def decided(
    session: Session,
    request: AuthorizationRequest,
    account_id: str,
    *,
    approve: bool,
    granted_details: Sequence[Mapping[str, Any]] | None,
    reuse_grant_id: str | None,
    reason: str | None,
) -> None:
    """``access.approved`` or ``grant.denied``, at the person's decision.

    An approval is not yet a grant: the grant is made when the app collects its token
    (``granted``, then ``grant.approved`` with its ``grant_id``), and an approval never
    collected makes none. So the decision is ``access.approved``, tied to the request by
    ``request_id`` (and to the reused grant by ``grant_id``, when the person reused one)."""
    details = (granted_details or request.requested_details) if approve else []
    extra: dict[str, Any] = {"request_id": request.id, "flow": request.flow}
    if approve:
        extra["access"] = limits_of(details)
        extra["reused"] = reuse_grant_id is not None
    else:
        extra["reason"] = reason or "The person denied the request."
    emit(
        session,
        "access.approved" if approve else "grant.denied",
        account_id,
        grant_data(
            reuse_grant_id if approve else None,
            request.client_id,
            request.client_name,
            _providers(details or request.requested_details),
            **extra,
        ),
    )


def grant_revoked(session: Session, grant: Grant, *, by: str) -> None:
    """``grant.revoked``: the grant, its app, its providers and who revoked it."""
    emit(
        session,
        "grant.revoked",
        grant.account_id,
        grant_data(
            grant.id,
            grant.client_id,
            grant.client_name,
            _providers(grant.details),
            revoked_by=by,
            revoked_at=isoformat_z(grant.revoked_at) if grant.revoked_at else None,
        ),
    )


def granted(session: Session, grant: Grant, *, request_id: str | None = None) -> None:
    """``grant.approved``, once per grant, when its row is made: an app collecting the
    token of an approved request (``request_id`` names it), or a personal token minted
    without a request. A token re-issued for a reused grant sends no second one."""
    extra: dict[str, Any] = {"flow": grant.flow, "access": limits_of(grant.details)}
    if request_id is not None:
        extra["request_id"] = request_id
    emit(
        session,
        "grant.approved",
        grant.account_id,
        grant_data(
            grant.id,
            grant.client_id,
            grant.client_name,
            _providers(grant.details),
            **extra,
        ),
    )
