"""Accounts: create, find, authenticate, disable."""

from __future__ import annotations

import re

from sqlmodel import Session, func, select

from okap_server.accounts.models import Account
from okap_server.accounts.passwords import hash_password, verify_password

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class AccountError(Exception):
    """An account operation was refused; the message is safe to show."""


def validate_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username):
        raise AccountError(
            "a username is 1 to 64 letters, digits, '.', '_', '@' or '-', starting with "
            "a letter or digit"
        )
    return username


def account_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Account)).one())


def create_account(
    session: Session, username: str, password: str, *, is_admin: bool = False
) -> Account:
    """Create an account; the caller commits. The first account is always an admin."""
    validate_username(username)
    if find_account(session, username) is not None:
        raise AccountError(f"an account named {username!r} already exists")
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    account = Account(
        username=username,
        password_hash=password_hash,
        is_admin=is_admin or account_count(session) == 0,
    )
    session.add(account)
    session.flush()
    return account


def find_account(session: Session, username: str) -> Account | None:
    return session.exec(select(Account).where(Account.username == username)).first()


def authenticate(session: Session, username: str, password: str) -> Account | None:
    """The account if the password matches and the account is active; same cost either way."""
    account = find_account(session, username)
    ok = verify_password(account.password_hash if account else None, password)
    if not ok or account is None or account.disabled:
        return None
    return account
