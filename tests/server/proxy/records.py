"""Reading what the proxy recorded (it writes off the hot path, so tests wait a little)."""

from __future__ import annotations

import time
from datetime import datetime

from sqlmodel import select

from okap_server.context import Vault
from okap_server.grants.counters import SpendCounter
from okap_server.grants.periods import day_key, month_key
from okap_server.proxy.accounting.admission import Admitted
from okap_server.proxy.models import RequestLog, Reservation
from okap_server.proxy.recorder import Outcome
from tests.support.grants import IssuedGrant


def wait_for_logs(vault: Vault, count: int, timeout: float = 10.0) -> list[RequestLog]:
    deadline = time.monotonic() + timeout
    while True:
        with vault.session() as session:
            rows = list(session.exec(select(RequestLog).order_by(RequestLog.created_at)))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def wait_until_settled(vault: Vault, timeout: float = 10.0) -> None:
    """Until no spend is held by requests in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with vault.session() as session:
            if session.exec(select(Reservation)).first() is None:
                return
        time.sleep(0.02)
    raise AssertionError("reservations were not settled")


def spend(vault: Vault, grant_id: str, period: str = "total") -> SpendCounter | None:
    with vault.session() as session:
        rows = session.exec(
            select(SpendCounter).where(
                SpendCounter.grant_id == grant_id, SpendCounter.period == period
            )
        ).all()
        return rows[0] if rows else None


def settled_outcome(grant: IssuedGrant, held: Admitted, now: datetime, cost: int) -> Outcome:
    """The settlement record of a request admitted with ``held``, that finally cost ``cost``."""
    return Outcome(
        account_id=grant.account_id,
        grant_id=grant.grant_id,
        client_name="x",
        provider="openai",
        endpoint="POST chat/completions",
        status=200,
        cost_micros=cost,
        admitted=True,
        reservation_id=held.reservation_id,
        reserved_micros=held.reserved_micros,
        reserved_periods=held.reserved_periods,
        day=day_key(now),
        month=month_key(now),
    )
