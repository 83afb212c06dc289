"""Management tokens (``okapm_``): creation, listing, revocation and authentication.

A management token acts as the account that made it, and only within its scopes (least
privilege, RFC 6749 §3.3 scope semantics). It never reaches another account's data, an
admin's included: ``admin`` manages accounts, not other people's keys or grants, and
``metrics:read`` reads the vault-wide metrics (both admins' only, ``ADMIN_SCOPES``). Only the
SHA-256 of a token is stored; the token itself is shown once, at creation.
Framework-free: the CLI, the API and (later) the dashboard call these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from okap_server.accounts.models import Account, ManagementToken
from okap_server.audit.events import record_event
from okap_server.clock import utcnow
from okap_server.grants.tokens import (
    looks_like_management_token,
    new_management_token,
    token_hash,
)

SCOPES: tuple[str, ...] = (
    "grants:read",
    "grants:write",
    "keys:read",
    "keys:write",
    "tokens:write",
    "usage:read",
    "events:read",
    "webhooks:write",
    "metrics:read",
    "admin",
)
# Scopes only an admin's token may carry, and that stop working when the account stops
# being an admin: ``admin`` manages accounts, and ``metrics:read`` reads /metrics, which
# counts every account's spend and grants.
ADMIN_SCOPES: frozenset[str] = frozenset({"admin", "metrics:read"})
MAX_NAME = 100
MAX_EXPIRY_DAYS = 3650
# A token's last use is written at most this often, not on every call.
LAST_USE_EVERY = timedelta(seconds=60)


class ManagementTokenError(Exception):
    """A refused creation; the message is safe to show."""


@dataclass(frozen=True)
class Principal:
    """Who an API call acts as: one account, through one token, with these scopes."""

    token_id: str
    account_id: str
    scopes: frozenset[str]
    is_admin: bool


def create_token(
    session: Session,
    account: Account,
    *,
    name: str,
    scopes: list[str],
    expires_in_days: int | None = None,
    ip: str | None = None,
) -> tuple[ManagementToken, str]:
    """A new token for ``account`` (the caller commits); returns the row and the token,
    which is not stored and cannot be shown again."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ManagementTokenError(f"name: 1 to {MAX_NAME} characters")
    if not scopes:
        raise ManagementTokenError("scope: name at least one scope")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ManagementTokenError(f"scope: unknown scope {unknown[0][:40]!r}")
    reserved = [s for s in SCOPES if s in ADMIN_SCOPES and s in scopes]
    if reserved and not account.is_admin:
        raise ManagementTokenError(f"scope: only an admin's token may carry {reserved[0]!r}")
    if account.disabled:
        raise ManagementTokenError("account: disabled")
    expires_at: datetime | None = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise ManagementTokenError(f"expires-in: 1 to {MAX_EXPIRY_DAYS} days")
        expires_at = utcnow() + timedelta(days=expires_in_days)
    token = new_management_token()
    row = ManagementToken(
        account_id=account.id,
        name=name,
        token_hash=token_hash(token),
        scopes=[s for s in SCOPES if s in scopes],
        expires_at=expires_at,
    )
    session.add(row)
    record_event(
        session,
        "api_token_created",
        account_id=account.id,
        ip=ip,
        token_id=row.id,
        name=name,
        scopes=row.scopes,
    )
    return row, token


def list_tokens(session: Session, account_id: str | None = None) -> list[ManagementToken]:
    """Every token (newest first), or one account's."""
    query = select(ManagementToken)
    if account_id is not None:
        query = query.where(ManagementToken.account_id == account_id)
    return list(session.exec(query.order_by(col(ManagementToken.created_at).desc())).all())


def revoke_token(
    session: Session, token_id: str, *, account_id: str | None = None, ip: str | None = None
) -> ManagementToken | None:
    """Revoke by id (of ``account_id``'s tokens, if given); None if there is no such token."""
    row = session.get(ManagementToken, token_id[:40])
    if row is None or (account_id is not None and row.account_id != account_id):
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        record_event(
            session, "api_token_revoked", account_id=row.account_id, ip=ip, token_id=row.id
        )
    return row


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=utcnow().tzinfo)


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal of a live token: right shape and checksum, known hash, not revoked or
    expired, account not disabled. Records the last use (at most once a minute)."""
    if not looks_like_management_token(token):
        return None
    row = session.exec(
        select(ManagementToken).where(ManagementToken.token_hash == token_hash(token))
    ).first()
    now = utcnow()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and _aware(row.expires_at) <= now:
        return None
    account = session.get(Account, row.account_id)
    if account is None or account.disabled:
        return None
    if row.last_used_at is None or now - _aware(row.last_used_at) >= LAST_USE_EVERY:
        row.last_used_at = now
        session.add(row)
        session.commit()
    scopes = frozenset(row.scopes)
    if not account.is_admin:
        scopes -= ADMIN_SCOPES
    return Principal(row.id, row.account_id, scopes, account.is_admin)
