"""Team vaults as the admin page shows them: every account with its role, keys and apps.

Adding, disabling, re-enabling and resetting a password are ``manage/accounts.py``'s, which
the management API calls too.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from okap_server.dashboard import formatting as fmt
from okap_server.manage.accounts import account_rows


@dataclass(frozen=True)
class AccountView:
    id: str
    username: str
    role: str
    is_admin: bool
    disabled: bool
    keys: int
    apps: int
    created: str
    is_me: bool


def accounts(session: Session, me: str) -> list[AccountView]:
    return [
        AccountView(
            id=a.id,
            username=a.username,
            role=("admin" if a.is_admin else "member") + (", disabled" if a.disabled else ""),
            is_admin=a.is_admin,
            disabled=a.disabled,
            keys=a.keys,
            apps=a.apps,
            created=fmt.timestamp(a.created_at),
            is_me=a.id == me,
        )
        for a in account_rows(session)
    ]
