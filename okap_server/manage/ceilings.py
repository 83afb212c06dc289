"""Setting spend ceilings: an account's (daily, weekly, monthly) and a key's (monthly).

One path for the dashboard and the command line: the value is validated
(``grants.ceilings``, ``CeilingError`` with nothing saved), audited, and every grant of the
account is told at the commit (``grants.lifecycle``), so a cached grant sees the new
ceiling on its next request.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from okap_server.accounts.models import Account
from okap_server.audit.events import record_event
from okap_server.context import Vault
from okap_server.grants import lifecycle
from okap_server.grants.ceilings import (
    ACCOUNT_PERIODS,
    grant_ids_of,
    set_account_ceilings,
    set_key_ceiling,
)
from okap_server.vault.models import ProviderKey


def _reach_grants(session: Session, account_id: str) -> None:
    """Every cached grant of the account sees the change on its next request after this
    session commits (``grants.lifecycle``)."""
    for grant_id in grant_ids_of(session, account_id):
        lifecycle.notify_after_commit(session, grant_id)


def set_account(
    session: Session, account: Account, given: dict[str, Any], *, ip: str | None, via: str
) -> None:
    """Set the named periods' ceilings (the caller commits); raises CeilingError."""
    set_account_ceilings(session, account, **given)
    record_event(session, "spend_ceiling_changed", account_id=account.id, ip=ip, via=via, **given)
    _reach_grants(session, account.id)


def set_key(session: Session, key: ProviderKey, monthly: Any, *, ip: str | None, via: str) -> None:
    """Set a key's monthly ceiling (the caller commits); raises CeilingError."""
    set_key_ceiling(session, key, monthly)
    record_event(
        session,
        "spend_ceiling_changed",
        account_id=key.account_id,
        ip=ip,
        key_id=key.id,
        monthly=monthly,
        via=via,
    )
    _reach_grants(session, key.account_id)


def save_account(vault: Vault, account_id: str, form: dict[str, str], ip: str | None) -> None:
    """The dashboard's form; raises CeilingError (nothing saved) for a value that is not an
    amount of USD."""
    with vault.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        given = {p: form.get(p, "") for p in ACCOUNT_PERIODS}
        set_account(session, account, given, ip=ip, via="dashboard")
        session.commit()


def save_key(
    vault: Vault, account_id: str, key_id: str, monthly: str, ip: str | None
) -> bool | None:
    """None if the account has no such key; raises CeilingError (nothing saved)."""
    with vault.session() as session:
        key = session.get(ProviderKey, key_id)
        if key is None or key.account_id != account_id:
            return None
        set_key(session, key, monthly, ip=ip, via="dashboard")
        session.commit()
    return True
