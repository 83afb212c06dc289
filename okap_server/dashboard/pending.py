"""Pending requests on the dashboard: the same decision as the consent page, made from a list.

Approving here grants exactly what the app asked for (each limit it did not name filled
from the person's default limits), backed by the person's default key of each provider. To
narrow it, or when the app waits for a browser redirect (the code flow), the person opens
the full consent page instead. The list holds only requests this account may decide
(``requests.pending_for``), and deciding claims the request first (``requests.claim``).

An app that already holds a live grant for the same request is offered reuse, as on the
consent page, through the same decision (``reuse.approve_by_reuse``): "Approve as asked"
would otherwise mint a second grant with its own budget beside the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from okap_server.authorization.defaults import default_limits_for, with_defaults
from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.requests import (
    DecisionError,
    NotYourRequest,
    claim,
    decide,
    pending_for,
)
from okap_server.authorization.reuse import ReuseGone, approve_by_reuse, live_grant_like
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.dashboard import formatting as fmt
from okap_server.web.consent_summary import ExistingAccess, existing_view

FLOW_LABELS = {
    "code": "sign-in from an app in this browser",
    "device": "a device or command line",
    "okap": "an app waiting for your answer",
    "reference": "an app waiting for your answer",
}


class PendingError(Exception):
    """This request cannot be decided from the list; the message says what to do."""


@dataclass(frozen=True)
class PendingView:
    id: str
    client_name: str
    client_id: str
    flow: str
    flow_label: str
    providers: str
    models: str
    asked: str
    expires: str
    quick: bool  # may be approved from the list
    existing: ExistingAccess | None  # the app's live grant for this same request


def view(
    row: AuthorizationRequest, vault: Vault, existing: ExistingAccess | None = None
) -> PendingView:
    now = utcnow()
    names = []
    models: list[str] = []
    for entry in row.requested_details:
        provider = vault.providers.get(str(entry.get("provider", "")))
        names.append(provider.name if provider else str(entry.get("provider")))
        models.extend(entry.get("models") or [])
    return PendingView(
        id=row.id,
        client_name=row.client_name,
        client_id=row.client_id,
        flow=row.flow,
        flow_label=FLOW_LABELS.get(row.flow, row.flow),
        providers=", ".join(names),
        models=", ".join(models) if models else "all models",
        asked=fmt.ago(row.created_at, now),
        expires=fmt.expiry(row.expires_at, now),
        quick=row.flow != "code",
        existing=existing,
    )


def waiting(vault: Vault, session: Session, account_id: str) -> list[PendingView]:
    views = []
    for row in pending_for(session, account_id):
        grant = live_grant_like(session, account_id, row)
        views.append(view(row, vault, existing_view(grant, vault.providers) if grant else None))
    return views


def _mine(session: Session, account_id: str, request_id: str) -> AuthorizationRequest:
    """The request, claimed for this account; another account's is not found (404)."""
    row = session.get(AuthorizationRequest, request_id[:40])
    if row is None:
        raise LookupError(request_id)
    try:
        claim(session, row, account_id)
    except NotYourRequest:
        raise LookupError(request_id) from None
    except DecisionError:
        raise PendingError("This request was already decided or has expired.") from None
    return row


def _with_default_keys(
    vault: Vault, session: Session, account_id: str, details: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    granted = []
    for entry in details:
        provider = str(entry.get("provider", ""))
        canonical = vault.providers.canonical(provider) or provider
        key = vault.keys.default_for(session, account_id, canonical)
        if key is None:
            row = vault.providers.get(provider)
            raise PendingError(
                f"You have no {row.name if row else provider} key yet. Add one under Keys, "
                "or open the request to paste one."
            )
        granted.append({**entry, "key_id": key.id})
    return granted


def decide_from_list(
    vault: Vault, account_id: str, request_id: str, *, approve: bool, ip: str | None
) -> AuthorizationRequest:
    """Approve as asked, or deny. Raises LookupError (not this account's), PendingError."""
    with vault.session() as session:
        row = _mine(session, account_id, request_id)
        if approve and row.flow == "code":
            raise PendingError("Open this request to approve it: the app waits in your browser.")
        granted = None
        if approve:
            details = with_defaults(
                row.requested_details, default_limits_for(session, account_id, vault.settings)
            )
            granted = _with_default_keys(vault, session, account_id, details)
        try:
            decide(
                session,
                row,
                account_id,
                approve=approve,
                collect_seconds=vault.settings.approval_ttl_seconds,
                granted_details=granted,
                ip=ip,
            )
        except DecisionError as exc:
            raise PendingError(str(exc)) from None
        return row


def reuse_from_list(
    vault: Vault, account_id: str, request_id: str, grant_id: str, *, ip: str | None
) -> AuthorizationRequest:
    """Approve by reusing the app's live grant the list offered. Raises LookupError (not
    this account's) and PendingError (decided meanwhile, or the grant is gone)."""
    with vault.session() as session:
        row = _mine(session, account_id, request_id)
        if row.flow == "code":
            raise PendingError("Open this request to approve it: the app waits in your browser.")
        try:
            approve_by_reuse(
                session,
                row,
                account_id,
                grant_id,
                collect_seconds=vault.settings.approval_ttl_seconds,
                ip=ip,
            )
        except (ReuseGone, DecisionError) as exc:
            raise PendingError(str(exc)) from None
        return row
