"""A person's decision on an app's request, written once for every front door.

The consent page (``web/consent_routes.py``) and the dashboard's pending list
(``dashboard/pending_routes.py``) both decide through here: attach a backing key to each
granted entry (``with_keys``), then approve (``approve_request``), deny
(``deny_request``) or approve by reusing the app's live grant (``reuse_grant``). Who may
decide is ``authorization.requests`` (``claim`` before any of these; ``decide``, once,
atomic, audited). What stays with each front door is its own: the consent page parses its
form into narrowing choices, narrows, renders, and sends the code flow back to the app;
the list grants exactly what was asked.

Approving from the list fills each limit the app did not name from the person's default
limits and backs each entry with the person's default key of its provider. To narrow, or
when the app waits for a browser redirect (the code flow), the person opens the full
consent page instead. The list holds only requests this account may decide
(``requests.pending_for``), and deciding claims the request first (``requests.claim``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from okap_server.authorization.defaults import default_limits_for, with_defaults
from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.requests import DecisionError, NotYourRequest, claim, decide
from okap_server.authorization.reuse import ReuseGone, approve_by_reuse
from okap_server.context import Vault


class NoKey(Exception):
    """No key backs this provider's entry: the person has none (``chosen`` False), or the
    key they chose is not one of their keys of that provider (``chosen`` True). Each front
    door words its own message from ``provider`` (the id) and ``name`` (the display name)."""

    def __init__(self, provider: str, name: str, *, chosen: bool) -> None:
        super().__init__(provider)
        self.provider = provider
        self.name = name
        self.chosen = chosen


class PendingError(Exception):
    """This request cannot be decided from the list; the message says what to do."""


@dataclass(frozen=True)
class KeyChoice:
    """The key a person picked for one provider: a stored key, or a new one pasted right
    there (``new_key`` = label, secret). Neither: the provider's default key."""

    key_id: str | None = None
    new_key: tuple[str, str] | None = None


def with_keys(
    vault: Vault,
    session: Session,
    account_id: str,
    details: list[dict[str, Any]],
    choices: Mapping[str, KeyChoice] | None = None,
) -> list[dict[str, Any]]:
    """Each granted entry with its backing ``key_id``: the chosen key, a newly pasted one
    (stored now; the caller commits or rolls back), or the provider's default key.

    Raises NoKey, and ``KeyStoreError`` for a pasted key the store refuses."""
    result = []
    for entry in details:
        provider = str(entry.get("provider", ""))
        canonical = vault.providers.canonical(provider) or provider
        choice = (choices or {}).get(provider, KeyChoice())
        if choice.new_key is not None:
            label, secret = choice.new_key
            key_id = vault.keys.add(
                session, account_id=account_id, provider=canonical, label=label, secret=secret
            ).id
        elif choice.key_id:
            key = vault.keys.get(session, account_id, choice.key_id)
            if key is None or key.provider != canonical:
                raise NoKey(provider, _name(vault, provider), chosen=True)
            key_id = key.id
        else:
            default = vault.keys.default_for(session, account_id, canonical)
            if default is None:
                raise NoKey(provider, _name(vault, provider), chosen=False)
            key_id = default.id
        result.append({**entry, "key_id": key_id})
    return result


def _name(vault: Vault, provider: str) -> str:
    row = vault.providers.get(provider)
    return row.name if row else provider


def approve_request(
    vault: Vault,
    session: Session,
    row: AuthorizationRequest,
    account_id: str,
    granted: list[dict[str, Any]],
    *,
    keys: Mapping[str, KeyChoice] | None = None,
    ip: str | None,
    delegation_allowed: bool | None = None,
) -> None:
    """Approve the claimed request with ``granted`` (already narrowed or filled from the
    defaults), each entry backed by its key (``with_keys``). Raises NoKey, KeyStoreError,
    DecisionError."""
    decide(
        session,
        row,
        account_id,
        approve=True,
        collect_seconds=vault.settings.approval_ttl_seconds,
        granted_details=with_keys(vault, session, account_id, granted, keys),
        ip=ip,
        delegation_allowed=delegation_allowed,
    )


def deny_request(
    vault: Vault, session: Session, row: AuthorizationRequest, account_id: str, *, ip: str | None
) -> None:
    """Deny the claimed request. Raises DecisionError."""
    decide(
        session,
        row,
        account_id,
        approve=False,
        collect_seconds=vault.settings.approval_ttl_seconds,
        ip=ip,
    )


def reuse_grant(
    vault: Vault,
    session: Session,
    row: AuthorizationRequest,
    account_id: str,
    grant_id: str,
    *,
    ip: str | None,
    delegation_allowed: bool | None = None,
) -> None:
    """Approve the claimed request by reusing the app's live grant ``grant_id`` for the
    same access; ``delegation_allowed`` (the consent page's box) can only narrow it.
    Raises ReuseGone, DecisionError."""
    approve_by_reuse(
        session,
        row,
        account_id,
        grant_id,
        collect_seconds=vault.settings.approval_ttl_seconds,
        ip=ip,
        delegation_allowed=delegation_allowed,
    )


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


def decide_from_list(
    vault: Vault, account_id: str, request_id: str, *, approve: bool, ip: str | None
) -> AuthorizationRequest:
    """Approve as asked, or deny. Raises LookupError (not this account's), PendingError."""
    with vault.session() as session:
        row = _mine(session, account_id, request_id)
        if approve and row.flow == "code":
            raise PendingError("Open this request to approve it: the app waits in your browser.")
        try:
            if approve:
                details = with_defaults(
                    row.requested_details, default_limits_for(session, account_id, vault.settings)
                )
                approve_request(vault, session, row, account_id, details, ip=ip)
            else:
                deny_request(vault, session, row, account_id, ip=ip)
        except NoKey as exc:
            raise PendingError(
                f"You have no {exc.name} key yet. Add one under Keys, "
                "or open the request to paste one."
            ) from None
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
            reuse_grant(vault, session, row, account_id, grant_id, ip=ip)
        except (ReuseGone, DecisionError) as exc:
            raise PendingError(str(exc)) from None
        return row
