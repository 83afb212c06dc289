"""Claiming an empty vault: the one-time setup link.

A vault with no account prints a link carrying a random token when it starts. Only the
SHA-256 of the token is stored (in ``vault_meta``), so the link works on every replica and a
database reader learns nothing usable. The first successful claim inserts a ``setup_claimed``
row: its primary key makes a second, concurrent claim fail, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from okap_server.accounts.models import Account
from okap_server.accounts.service import account_count, create_account
from okap_server.audit.events import record_event
from okap_server.clock import utcnow
from okap_server.vault.models import VaultMeta

SETUP_TOKEN_PREFIX = "setup_token:"
CLAIMED_KEY = "setup_claimed"
MAX_PENDING_TOKENS = 20


class SetupError(Exception):
    """The setup link cannot be used; the message is safe to show."""


class AlreadySetUp(SetupError):
    """The vault already has an account."""


def _token_key(token: str) -> str:
    return SETUP_TOKEN_PREFIX + hashlib.sha256(token.encode()).hexdigest()[:48]


def setup_path(token: str) -> str:
    return f"/setup?token={token}"


def is_claimed(session: Session) -> bool:
    return session.get(VaultMeta, CLAIMED_KEY) is not None or account_count(session) > 0


def issue_setup_token(session: Session, ttl_seconds: int) -> str | None:
    """A new one-time token for an empty vault (committed), or None once it has an account."""
    if is_claimed(session):
        return None
    now = utcnow()
    pending = session.exec(
        select(VaultMeta).where(col(VaultMeta.key).startswith(SETUP_TOKEN_PREFIX))
    ).all()
    live = sorted((r for r in pending if _expiry(r) > now), key=lambda r: r.updated_at)
    surplus = live[: max(0, len(live) - MAX_PENDING_TOKENS + 1)]
    for row in pending:
        if _expiry(row) <= now or row in surplus:
            session.delete(row)  # expired, or the oldest beyond the cap
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=ttl_seconds)
    session.add(VaultMeta(key=_token_key(token), value=expires.isoformat(), updated_at=now))
    session.commit()
    return token


def _expiry(row: VaultMeta) -> datetime:
    try:
        return datetime.fromisoformat(row.value)
    except ValueError:
        return utcnow() - timedelta(seconds=1)


def check_setup_token(session: Session, token: str) -> None:
    """Raise unless ``token`` is a live setup token of an unclaimed vault."""
    if is_claimed(session):
        raise AlreadySetUp("this vault is already set up; sign in instead")
    row = session.get(VaultMeta, _token_key(token)) if token else None
    if row is None or _expiry(row) <= utcnow():
        raise SetupError(
            "this setup link is not valid or has expired; restart `okap-server serve` "
            "for a new one, or create the account with `okap-server users add`"
        )


def setup_csrf_token(token: str, browser_nonce: str) -> str:
    """The form's CSRF value: bound to the setup token and to the browser's cookie nonce."""
    message = b"okap-setup-csrf:" + browser_nonce.encode()
    return hmac.new(token.encode(), message, "sha256").hexdigest()


def close_setup(session: Session, account: Account) -> None:
    """Mark the vault claimed and void every setup link; the caller commits."""
    session.add(VaultMeta(key=CLAIMED_KEY, value=account.id))
    session.exec(delete(VaultMeta).where(col(VaultMeta.key).startswith(SETUP_TOKEN_PREFIX)))


def claim_vault(
    session: Session, token: str, username: str, password: str, *, ip: str | None = None
) -> Account:
    """Create the owner account through a setup link, atomically; the link dies with it.

    Raises SetupError for a bad link, AccountError for a bad username or password (the link
    then stays usable)."""
    check_setup_token(session, token)
    try:
        account = create_account(session, username, password, is_admin=True)
        close_setup(session, account)
        record_event(session, "account_created", account_id=account.id, ip=ip, via="setup_link")
        session.commit()
    except (IntegrityError, OperationalError):
        # Lost a race with another claim: a duplicate ``setup_claimed`` row (PostgreSQL) or
        # a stale write snapshot (SQLite). Anything else is a real database problem.
        session.rollback()
        if not is_claimed(session):
            raise
        raise AlreadySetUp("this vault was just set up by someone else; sign in instead") from None
    except BaseException:
        session.rollback()
        raise
    return account
