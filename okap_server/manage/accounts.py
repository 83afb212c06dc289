"""Team vaults: an admin adds accounts, disables or re-enables them, and resets passwords.
The dashboard's admin page and the management API both call these.

A disabled account cannot sign in, its browsers are signed out, its connected apps are
revoked (``grants.lifecycle.revoke``), its management tokens are revoked, and what it
claimed or
approved but no app collected yet is withdrawn (``requests.withdraw_for_account``), so
nothing keeps spending on its keys and no token is minted from its approvals later. The
proxy also refuses any grant of a disabled account (``grants.view.load_grant``), which
covers a token collected in the instant of disabling. Re-enabling lets the person sign in
again; apps must ask again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, func, select

from okap_server.accounts.models import Account, WebSession
from okap_server.accounts.passwords import hash_password
from okap_server.accounts.service import AccountError, create_account
from okap_server.audit.events import record_event
from okap_server.authorization.requests import withdraw_for_account
from okap_server.clock import utcnow
from okap_server.grants import lifecycle
from okap_server.grants.models import Grant
from okap_server.manage.management_tokens import list_tokens, revoke_token
from okap_server.vault.models import ProviderKey


class AdminError(Exception):
    """Refused; the message is safe to show."""


@dataclass(frozen=True)
class AccountSummary:
    """One account as the admin page and the management API list it."""

    id: str
    username: str
    is_admin: bool
    disabled: bool
    keys: int
    apps: int  # active grants
    created_at: datetime


def _counts(session: Session, model: type[ProviderKey] | type[Grant]) -> dict[str, int]:
    query = select(model.account_id, func.count()).group_by(col(model.account_id))
    if model is Grant:
        query = query.where(col(Grant.revoked_at).is_(None), col(Grant.expires_at) > utcnow())
    return {account_id: int(n) for account_id, n in session.exec(query).all()}


def account_rows(session: Session) -> list[AccountSummary]:
    """Every account, oldest first, with its keys and active grants counted."""
    keys = _counts(session, ProviderKey)
    apps = _counts(session, Grant)
    rows = session.exec(select(Account).order_by(col(Account.created_at))).all()
    return [
        AccountSummary(
            id=a.id,
            username=a.username,
            is_admin=a.is_admin,
            disabled=a.disabled,
            keys=keys.get(a.id, 0),
            apps=apps.get(a.id, 0),
            created_at=a.created_at,
        )
        for a in rows
    ]


def add(
    session: Session, admin: Account, username: str, password: str, make_admin: bool, ip: str | None
) -> Account:
    try:
        account = create_account(session, username.strip(), password, is_admin=make_admin)
    except AccountError as exc:
        session.rollback()
        raise AdminError(str(exc).capitalize() + ".") from None
    record_event(
        session,
        "account_created",
        account_id=account.id,
        ip=ip,
        via="dashboard",
        by=admin.username,
    )
    session.commit()
    return account


def _active_admins(session: Session) -> int:
    query = select(func.count()).select_from(Account).where(col(Account.is_admin))
    return int(session.exec(query.where(col(Account.disabled).is_(False))).one())


def set_disabled(
    session: Session, admin: Account, account_id: str, disabled: bool, ip: str | None
) -> list[str]:
    """Disable (sign out, revoke its apps and management tokens) or re-enable; returns the
    revoked grant ids (every replica hears of them at this commit, ``grants.lifecycle``)."""
    account = session.get(Account, account_id[:40])
    if account is None:
        raise LookupError(account_id)
    if account.id == admin.id:
        raise AdminError("You cannot disable your own account.")
    if disabled and account.is_admin and not account.disabled and _active_admins(session) <= 1:
        raise AdminError("This is the last admin; make another admin first.")
    account.disabled = disabled
    session.add(account)
    revoked: list[str] = []
    if disabled:
        session.exec(delete(WebSession).where(col(WebSession.account_id) == account.id))
        grants = session.exec(
            select(Grant).where(Grant.account_id == account.id, col(Grant.revoked_at).is_(None))
        ).all()
        for grant in grants:
            if lifecycle.revoke(session, grant, by="admin", account_id=account.id, ip=ip):
                revoked.append(grant.id)
        withdraw_for_account(session, account.id)
        # Its management tokens end too, as its grants and sessions do: re-enabling the
        # account must not bring a token back that someone may have copied meanwhile.
        for token in list_tokens(session, account.id):
            revoke_token(session, token.id, ip=ip)
        record_event(session, "account_disabled", account_id=account.id, ip=ip, by=admin.username)
    else:
        record_event(session, "account_enabled", account_id=account.id, ip=ip, by=admin.username)
    session.commit()
    return revoked


def reset_password(
    session: Session, admin: Account, account_id: str, password: str, ip: str | None
) -> Account:
    account = session.get(Account, account_id[:40])
    if account is None:
        raise LookupError(account_id)
    try:
        account.password_hash = hash_password(password)
    except ValueError as exc:
        raise AdminError(f"New password: {exc}.") from None
    session.add(account)
    session.exec(delete(WebSession).where(col(WebSession.account_id) == account.id))
    record_event(
        session,
        "password_changed",
        account_id=account.id,
        ip=ip,
        via="admin reset",
        by=admin.username,
    )
    session.commit()
    return account
