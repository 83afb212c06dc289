"""A pending request decided from the dashboard's list: the same decision as the consent
page (``requests.decide``), made from a list.

Approving here grants exactly what the app asked for (each limit it did not name filled
from the person's default limits), backed by the person's default key of each provider. To
narrow it, or when the app waits for a browser redirect (the code flow), the person opens
the full consent page instead. The list holds only requests this account may decide
(``requests.pending_for``), and deciding claims the request first (``requests.claim``).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from okap_server.authorization.defaults import default_limits_for, with_defaults
from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.requests import DecisionError, NotYourRequest, claim, decide
from okap_server.authorization.reuse import ReuseGone, approve_by_reuse
from okap_server.context import Vault


class PendingError(Exception):
    """This request cannot be decided from the list; the message says what to do."""


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
