"""Writing the security audit trail: sign-ins, grants, denials, revocations, key changes."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from okap_server.audit.models import SecurityEvent

# The kinds the vault writes; the dashboard filters on them.
EVENT_KINDS: tuple[str, ...] = (
    "signin",
    "signin_failed",
    "signout",
    "account_created",
    "account_disabled",
    "account_enabled",
    "account_removed",
    "password_changed",
    "key_added",
    "key_removed",
    "key_default_changed",
    "grant_approved",
    "grant_denied",
    "grant_revoked",
    "grant_delegated",
    "grant_limits_changed",
    "spend_ceiling_changed",
    "code_replayed",
    "user_code_failed",
    "master_key_rotated",
    "vault_imported",
    "api_token_created",
    "api_token_revoked",
    "key_changed",
    "token_regenerated",
)


def record_event(
    session: Session,
    kind: str,
    *,
    account_id: str | None = None,
    ip: str | None = None,
    **detail: Any,
) -> SecurityEvent:
    """Add one event to the session; the caller's commit writes it with the change it audits."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    event = SecurityEvent(kind=kind, account_id=account_id, ip=ip, detail=detail)
    session.add(event)
    return event
