"""Checking the vault's books after faults: every request logged, spend equal to the sum of
what was logged, no hold left behind."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlmodel import select

from okap_server.context import Vault
from okap_server.grants.counters import SpendCounter
from okap_server.proxy.models import RequestLog, Reservation


@dataclass
class Books:
    logs: list[RequestLog]
    spent_micros: int
    reserved_micros: int
    requests: int
    reservations: int

    def by_status(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for log in self.logs:
            counts[log.status] = counts.get(log.status, 0) + 1
        return counts


def read_books(vault: Vault, grant_id: str) -> Books:
    with vault.session() as session:
        logs = list(
            session.exec(
                select(RequestLog)
                .where(RequestLog.grant_id == grant_id)
                .order_by(RequestLog.created_at)  # type: ignore[arg-type]
            )
        )
        total = session.exec(
            select(SpendCounter).where(
                SpendCounter.grant_id == grant_id, SpendCounter.period == "total"
            )
        ).all()
        held = session.exec(select(Reservation).where(Reservation.grant_id == grant_id)).all()
    return Books(
        logs=logs,
        spent_micros=sum(row.spent_micros for row in total),
        reserved_micros=sum(row.reserved_micros for row in total),
        requests=sum(row.requests for row in total),
        reservations=len(held),
    )


def settled_books(vault: Vault, grant_id: str, count: int, timeout: float = 15.0) -> Books:
    """The books once ``count`` requests are logged and no hold is left (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        books = read_books(vault, grant_id)
        done = len(books.logs) >= count and books.reservations == 0
        if done or time.monotonic() > deadline:
            return books
        time.sleep(0.05)


def assert_balanced(books: Books, count: int) -> None:
    """Nothing lost, nothing double-counted, nothing held."""
    assert len(books.logs) == count, books.by_status()
    assert books.reservations == 0
    assert books.reserved_micros == 0
    assert books.requests == count
    assert books.spent_micros == sum(log.cost_micros for log in books.logs)
