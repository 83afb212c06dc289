"""Counter deltas, gathered by settlement and the sweeper and applied in lock order.

Admission holds a request's rows in one order: its account's ceiling rows, its key's, then
the grant entry's own (``budget.hold_rows``), requests sorted by account, key and grant
(``admission.py``). Settling in any other order could lock a row admission holds while
admission waits for one settlement holds: a deadlock on PostgreSQL. So each delta is
applied at its place in that same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from okap_server.proxy.accounting.periods import (
    CEILING_PROVIDER,
    account_scope,
    day_key,
    key_scope,
    month_key,
    week_key,
)

Counter = tuple[str, str, str]  # scope (a grant id, account:<id> or key:<id>), provider, period


Place = tuple[str, str, int, tuple[str, ...]]  # account, key, rank, the grant's id path


class Deltas(dict[Counter, list[int]]):
    """``[spent, reserved, requests]`` to add to each counter row."""

    def __init__(self) -> None:
        super().__init__()
        self._places: dict[tuple[str, str], Place] = {}

    def place(
        self,
        grant_id: str,
        provider: str,
        account_id: str | None,
        key_id: str | None,
        ancestors: tuple[str, ...] = (),
    ) -> None:
        """Where a grant entry's rows, and its account's and key's, come in the lock order.
        A delegated grant's rows, and its ancestors', come in the order of their paths from
        the root (``(root,)`` < ``(root, child)``), as admission locks them."""
        account, key = account_id or "", key_id or ""
        places = self._places
        if account:
            places.setdefault((account_scope(account), CEILING_PROVIDER), (account, "", 0, ()))
        if key:
            places.setdefault((key_scope(key), CEILING_PROVIDER), (account, key, 1, ()))
        for depth, ancestor in enumerate(ancestors):
            places.setdefault((ancestor, provider), (account, key, 2, ancestors[: depth + 1]))
        places.setdefault((grant_id, provider), (account, key, 2, (*ancestors, grant_id)))

    def add(self, counter: Counter, spent: int = 0, reserved: int = 0, requests: int = 0) -> None:
        entry = self.setdefault(counter, [0, 0, 0])
        entry[0] += spent
        entry[1] += reserved
        entry[2] += requests

    def charge(
        self,
        grant_id: str,
        provider: str,
        periods: tuple[str, str, str],
        account_id: str | None,
        key_id: str | None,
        spent: int,
        requests: int,
        ancestors: tuple[str, ...] = (),
    ) -> None:
        """A request's spend (``periods``: its day, week and month), in every period it is
        reported in: the grant entry's total, day, week and month (and each ancestor's, for
        a delegated grant), its account's day, week and month, and its key's month.
        Ceilings are counted whether or not one is set, so one set later is true at once."""
        day, week, month = periods
        for scope in (*ancestors, grant_id):  # a delegated grant's spend is its parents' too
            for period in ("total", day, week, month):
                self.add((scope, provider, period), spent, 0, requests)
        if account_id:
            for period in (day, week, month):
                self.add((account_scope(account_id), CEILING_PROVIDER, period), spent, 0, requests)
        if key_id:
            self.add((key_scope(key_id), CEILING_PROVIDER, month), spent, 0, requests)

    def ordered(self) -> Iterator[tuple[Counter, list[int]]]:
        places = self._places

        def order(
            item: tuple[Counter, list[int]],
        ) -> tuple[str, str, int, tuple[str, ...], str, str]:
            (scope, provider, period), _ = item
            account, key, rank, path = places.get((scope, provider), ("", "", 2, (scope,)))
            if rank < 2:
                return account, key, rank, (), "", period
            return account, key, rank, path, provider, period

        return iter(sorted(self.items(), key=order))


def periods_of(when: datetime) -> tuple[str, str, str]:
    """The day, week and month of ``when``."""
    return day_key(when), week_key(when), month_key(when)
