"""The dashboard's spend ceilings as its pages show them: the account's (Settings) and each
key's (Keys). Saving one is ``manage/ceilings.py``'s, as for the command line; validation
and reporting are ``grants/ceilings.py``'s, so the dashboard, the CLI and ``/okap/usage``
agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from okap_server.clock import utcnow
from okap_server.dashboard import formatting as fmt
from okap_server.grants.ceilings import (
    ACCOUNT_PERIODS,
    account_ceiling_report,
)

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
