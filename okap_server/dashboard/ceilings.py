"""The dashboard's spend ceilings: the account's (Settings) and each key's (Keys).

The page logic only: validation and reporting are the proxy's own
(``proxy/accounting/ceilings.py``), so the dashboard, the CLI and ``/okap/usage`` agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from okap_server.accounts.models import Account
from okap_server.audit.events import record_event
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.dashboard import formatting as fmt
from okap_server.proxy.accounting.ceilings import (
    ACCOUNT_PERIODS,
    account_ceiling_report,
    grant_ids_of,
    set_account_ceilings,
    set_key_ceiling,
)
from okap_server.vault.models import ProviderKey

WINDOW_OF = {"daily": "day", "weekly": "week", "monthly": "month"}


@dataclass(frozen=True)
class CeilingView:
    value: str  # what the form field shows: the ceiling in USD, or empty for none
    status: str  # "$1.20 spent of $10.00 this month, $8.80 left"


def _view(window: dict[str, float | None], period: str) -> CeilingView:
    used, limit, left = window["used"] or 0.0, window["limit"], window["remaining"]
    if limit is None:
        return CeilingView("", f"{fmt.usd(used)} spent {period}, no ceiling")
    status = f"{fmt.usd(used)} spent {period} of {fmt.usd(limit)}, {fmt.usd(left or 0.0)} left"
    return CeilingView(fmt.plain_number(limit), status)


def _report(session: Session, account_id: str) -> dict[str, Any]:
    return account_ceiling_report(session, account_id, utcnow())


def account_views(session: Session, account_id: str) -> dict[str, CeilingView]:
    report = _report(session, account_id)["account"]
    spans = {"daily": "today", "weekly": "this week", "monthly": "this month"}
    return {p: _view(report[WINDOW_OF[p]], spans[p]) for p in ACCOUNT_PERIODS}


def key_views(session: Session, account_id: str) -> dict[str, CeilingView]:
    report = _report(session, account_id)["keys"]
    return {key_id: _view(shown["month"], "this month") for key_id, shown in report.items()}


def _reach_grants(vault: Vault, session: Session, account_id: str) -> None:
    """Every cached grant of the account sees the change on its next request."""
    for grant_id in grant_ids_of(session, account_id):
        vault.grant_changed(grant_id)


def save_account(vault: Vault, account_id: str, form: dict[str, str], ip: str | None) -> None:
    """Raises CeilingError (nothing saved) for a value that is not an amount of USD."""
    with vault.session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        given = {p: form.get(p, "") for p in ACCOUNT_PERIODS}
        set_account_ceilings(session, account, **given)
        record_event(
            session, "spend_ceiling_changed", account_id=account_id, ip=ip, via="dashboard", **given
        )
        session.commit()
        _reach_grants(vault, session, account_id)


def save_key(
    vault: Vault, account_id: str, key_id: str, monthly: str, ip: str | None
) -> bool | None:
    """None if the account has no such key; raises CeilingError (nothing saved)."""
    with vault.session() as session:
        key = session.get(ProviderKey, key_id)
        if key is None or key.account_id != account_id:
            return None
        set_key_ceiling(session, key, monthly)
        record_event(
            session,
            "spend_ceiling_changed",
            account_id=account_id,
            ip=ip,
            key_id=key_id,
            monthly=monthly,
            via="dashboard",
        )
        session.commit()
        _reach_grants(vault, session, account_id)
    return True
