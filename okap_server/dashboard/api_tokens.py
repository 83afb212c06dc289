"""The "API tokens" and "New token" pages: a person's ``okapm_`` management tokens.

Thin: creating, listing and revoking are ``accounts/management_tokens.py``'s, the same
functions ``okap-server api-tokens`` and the API call, so the checks (known scopes,
``admin`` for admins only, name and expiry bounds) and the audit are written once. This
module only shapes rows for the page and reads the form. A token is shown once, on the
answer to the POST that made it; only its hash is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from okap_server.accounts.models import Account, ManagementToken
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.dashboard import formatting as fmt
from okap_server.manage.management_tokens import (
    ADMIN_SCOPES,
    SCOPES,
    ManagementTokenError,
    create_token,
    list_tokens,
    revoke_token,
)

# What each scope lets a token do, as the "New token" page offers it.
SCOPE_TEXT: dict[str, str] = {
    "grants:read": "List apps' access and its usage",
    "grants:write": "Narrow or revoke apps' access",
    "keys:read": "List provider keys (hints only)",
    "keys:write": "Add, change, test and remove provider keys",
    "tokens:write": "Mint personal tokens for scripts",
    "usage:read": "Read usage and spend ceilings",
    "events:read": "Read the activity log",
    "webhooks:write": "Manage webhooks",
    "metrics:read": "Read this vault's metrics, every account's (admins only)",
    "admin": "Manage this vault's accounts (admins only)",
}
EXPIRY_CHOICES: tuple[tuple[str, str], ...] = (
    ("7", "7 days"),
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
    ("", "Never"),
)
DEFAULT_EXPIRY = "90"


@dataclass(frozen=True)
class TokenView:
    id: str
    name: str
    scopes: list[str]
    created: str
    last_used: str
    expires: str
    active: bool


def _view(row: ManagementToken) -> TokenView:
    now = utcnow()
    expired = row.expires_at is not None and fmt.aware(row.expires_at) <= now
    return TokenView(
        id=row.id,
        name=row.name,
        scopes=list(row.scopes),
        created=fmt.timestamp(row.created_at),
        last_used=fmt.ago(row.last_used_at, now),
        expires=fmt.expiry(row.expires_at, now, revoked=row.revoked_at is not None),
        active=row.revoked_at is None and not expired,
    )


def offered_scopes(account: Account) -> list[tuple[str, str]]:
    """(scope, what it allows) for the form: ``ADMIN_SCOPES`` only to an admin."""
    return [(s, SCOPE_TEXT[s]) for s in SCOPES if s not in ADMIN_SCOPES or account.is_admin]


def tokens_of(vault: Vault, account_id: str) -> list[TokenView]:
    with vault.session() as session:
        return [_view(row) for row in list_tokens(session, account_id)]


def expiry_days(text: str) -> int | None:
    """The form's expiry choice; "" is never. Bounds are ``create_token``'s to check."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ManagementTokenError("expiry: a number of days, or never") from None


def create(
    vault: Vault, account_id: str, name: str, scopes: list[str], expiry: str, ip: str | None
) -> tuple[TokenView, str]:
    """Create the token; returns its row as shown and the token, for this answer only.
    Raises ManagementTokenError with a message for the page."""
    with vault.session() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise ManagementTokenError("account: not found")
        row, token = create_token(
            session, account, name=name, scopes=scopes, expires_in_days=expiry_days(expiry), ip=ip
        )
        session.commit()
        session.refresh(row)
        return _view(row), token


def revoke(vault: Vault, account_id: str, token_id: str, ip: str | None) -> bool:
    """Revoke one of this account's tokens; False when it has none by that id."""
    with vault.session() as session:
        row = revoke_token(session, token_id, account_id=account_id, ip=ip)
        session.commit()
        return row is not None
