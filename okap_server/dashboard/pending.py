"""Pending requests as the dashboard lists them: who asks, for what, since when.

Deciding one from the list is ``manage/decisions.py``'s; the list holds only requests this
account may decide (``requests.pending_for``). An app that already holds a live grant for
the same request is offered reuse, as on the consent page (``reuse.approve_by_reuse``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.requests import (
    pending_for,
)
from okap_server.authorization.reuse import live_grant_like
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
