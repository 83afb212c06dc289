"""Group admission: many requests' rate windows and holds in one transaction, refusals
taking back what they counted, and the event loop's queue in front of it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Sequence

import pytest
from sqlmodel import select

from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.db.engine import sqlite_path
from okap_server.grants.counters import RateCounter
from okap_server.grants.periods import day_key
from okap_server.grants.view import Limits
from okap_server.proxy.accounting.admission import (
    Admission,
    AdmissionRequest,
    AdmissionResult,
    Admitted,
)
from okap_server.proxy.accounting.admission_queue import AdmissionQueue
from okap_server.proxy.accounting.lone import LoneAdmission
from okap_server.proxy.errors import BudgetExceeded, RateLimited
from okap_server.proxy.models import Reservation
from tests.server.proxy.records import spend
from tests.support.grants import entry, make_grant


def rate_counts(vault: Vault, grant_id: str) -> dict[str, int]:
    with vault.session() as session:
        rows = session.exec(select(RateCounter).where(RateCounter.grant_id == grant_id)).all()
        return {row.window.split(":")[0]: row.count for row in rows}


def holds(vault: Vault) -> int:
    with vault.session() as session:
        return len(session.exec(select(Reservation)).all())


def test_a_group_admits_and_refuses_each_request_on_its_own(vault: Vault) -> None:
    a = make_grant(vault, entry("openai"))
    b = make_grant(vault, entry("openai"))
    now = utcnow()
    tight = Limits(requests_per_minute=100, requests_per_day=2, daily_spend=1000)
    group = [
        AdmissionRequest(a.grant_id, "openai", tight, 400, now),
        AdmissionRequest(b.grant_id, "openai", Limits(daily_spend=500), 300, now),
        AdmissionRequest(a.grant_id, "openai", tight, 400, now),
        AdmissionRequest(a.grant_id, "openai", tight, 400, now),  # over the day's 2 requests
        AdmissionRequest(b.grant_id, "openai", Limits(daily_spend=500), 300, now),  # over $
        AdmissionRequest(b.grant_id, "openai", Limits(), 999, now),  # no limits: recorded
    ]
    results = Admission(vault.engine).admit_many(group)
    assert [type(r).__name__ for r in results] == [
        "Admitted",
        "Admitted",
        "Admitted",
        "RateLimited",
        "BudgetHeld",  # only held, not spent: retryable
        "Admitted",
    ]
    # The refused request counted in no window: the minute's count is 2, not 3.
    assert rate_counts(vault, a.grant_id) == {"minute": 2, "day": 2}
    day_a = spend(vault, a.grant_id, day_key(now))
    day_b = spend(vault, b.grant_id, day_key(now))
    assert day_a is not None and day_a.reserved_micros == 800
    assert day_b is not None and day_b.reserved_micros == 300
    # Every admitted request is recorded in flight, the one with no limits too (its row
    # holds no budget: it is what the sweeper audits if the process dies).
    assert holds(vault) == 4
    unlimited = results[5]
    assert isinstance(unlimited, Admitted) and unlimited.reserved_periods == ()


def test_a_budget_refusal_takes_back_the_rate_count_and_other_periods(vault: Vault) -> None:
    grant = make_grant(vault, entry("openai"))
    now = utcnow()
    limits = Limits(requests_per_minute=10, total_spend=10_000, daily_spend=500)
    admission = Admission(vault.engine)
    admission.admit(grant.grant_id, "openai", limits, 400, now)
    (refused,) = admission.admit_many(
        [AdmissionRequest(grant.grant_id, "openai", limits, 400, now)]
    )
    assert isinstance(refused, BudgetExceeded)
    assert refused.headers["x-ratelimit-remaining"] == "9"
    total = spend(vault, grant.grant_id, "total")
    assert total is not None and total.reserved_micros == 400  # the total's hold taken back
    assert rate_counts(vault, grant.grant_id) == {"minute": 1}


def test_concurrent_admissions_through_the_queue_never_pass_the_limit(vault: Vault) -> None:
    grant = make_grant(vault, entry("openai"))
    limits = Limits(requests_per_minute=20, total_spend=1_000_000)

    async def run() -> list[object]:
        queue = AdmissionQueue(Admission(vault.engine))
        queue.start()
        try:

            async def one() -> object:
                try:
                    return await queue.admit(grant.grant_id, "openai", limits, 100, utcnow())
                except RateLimited as exc:
                    return exc

            return await asyncio.gather(*(one() for _ in range(60)))
        finally:
            await queue.aclose()

    results = asyncio.run(run())
    admitted = [r for r in results if isinstance(r, Admitted)]
    assert len(admitted) == 20
    assert sum(isinstance(r, RateLimited) for r in results) == 40
    total = spend(vault, grant.grant_id, "total")
    assert total is not None and total.reserved_micros == 20 * 100
    assert rate_counts(vault, grant.grant_id) == {"minute": 20}


def test_a_hold_for_a_cancelled_waiter_is_handed_back(vault: Vault) -> None:
    grant = make_grant(vault, entry("openai"))
    orphans: list[Admitted] = []

    async def run() -> None:
        queue = AdmissionQueue(
            Admission(vault.engine), on_orphan=lambda _request, held: orphans.append(held)
        )
        queue.start()
        try:
            waiter = asyncio.create_task(
                queue.admit(grant.grant_id, "openai", Limits(total_spend=1000), 100, utcnow())
            )
            await asyncio.sleep(0)  # queued; cancelled before the group commits
            waiter.cancel()
            for _ in range(200):
                if orphans:
                    break
                await asyncio.sleep(0.01)
        finally:
            await queue.aclose()

    asyncio.run(run())
    assert len(orphans) == 1 and orphans[0].reservation_id is not None


class CountingAdmission(Admission):
    """Counts the groups the admission thread runs."""

    groups = 0

    def admit_many(self, requests: Sequence[AdmissionRequest]) -> list[AdmissionResult]:
        self.groups += 1
        return super().admit_many(requests)


def test_a_lone_request_is_admitted_on_the_loop_and_a_locked_database_sends_it_to_the_thread(
    vault: Vault,
) -> None:
    """SQLite: no thread hop for a request alone in flight, the same rows written, and a
    write lock held elsewhere never stalls the event loop (the thread waits instead)."""
    path = sqlite_path(vault.settings.effective_database_url)
    if path is None:
        pytest.skip("the lone path is SQLite's")
    grant = make_grant(vault, entry("openai"))
    limits = Limits(requests_per_minute=3, total_spend=1_000_000)
    admission = CountingAdmission(vault.engine)
    assert LoneAdmission.supported(vault.engine)
    ticks: list[float] = []

    async def run() -> tuple[object, ...]:
        queue = AdmissionQueue(admission, lone=LoneAdmission(admission))
        queue.start()
        try:
            first = await queue.admit(grant.grant_id, "openai", limits, 100, utcnow(), alone=True)
            assert admission.groups == 0  # admitted on the loop
            locked, release = threading.Event(), threading.Event()

            def hold() -> None:
                conn = sqlite3.connect(path, isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                locked.set()
                release.wait(10)
                conn.execute("ROLLBACK")
                conn.close()

            holder = threading.Thread(target=hold)
            holder.start()
            locked.wait(10)

            async def tick() -> None:
                for _ in range(20):
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.01)

            ticker = asyncio.create_task(tick())
            started = time.monotonic()
            waiting = asyncio.create_task(
                queue.admit(grant.grant_id, "openai", limits, 100, utcnow(), alone=True)
            )
            await asyncio.sleep(0.3)
            assert not waiting.done()  # the thread waits for the lock, the loop does not
            release.set()
            second = await waiting
            await ticker
            holder.join()
            assert admission.groups == 1
            assert time.monotonic() - started >= 0.3
            third = await queue.admit(grant.grant_id, "openai", limits, 100, utcnow(), alone=True)
            try:
                await queue.admit(grant.grant_id, "openai", limits, 100, utcnow(), alone=True)
            except RateLimited as exc:
                refused: object = exc
            return first, second, third, refused
        finally:
            await queue.aclose()

    first, second, third, refused = asyncio.run(run())
    assert all(isinstance(r, Admitted) for r in (first, second, third))
    assert isinstance(refused, RateLimited)
    assert admission.groups == 1  # the third and the refusal ran on the loop again
    # While the lock was held the loop went on ticking every 10 ms.
    assert max(b - a for a, b in zip(ticks, ticks[1:], strict=False)) < 0.2
    assert rate_counts(vault, grant.grant_id) == {"minute": 3}
    total = spend(vault, grant.grant_id, "total")
    assert total is not None and total.reserved_micros == 300
    assert holds(vault) == 3


def test_requests_of_one_grant_are_counted_together_and_each_gets_its_own_headers(
    vault: Vault,
) -> None:
    grant = make_grant(vault, entry("openai"))
    now = utcnow()
    limits = Limits(requests_per_minute=10, requests_per_day=1000, daily_spend=10_000)
    group = [
        AdmissionRequest(grant.grant_id, "openai", limits, 100 * (n + 1), now) for n in range(5)
    ]
    results = Admission(vault.engine).admit_many(group)
    assert all(isinstance(r, Admitted) for r in results)
    admitted = [r for r in results if isinstance(r, Admitted)]
    # Each sees the window as it stood after itself, in arrival order.
    assert [r.rate.remaining for r in admitted if r.rate] == [9, 8, 7, 6, 5]
    assert [r.reserved_micros for r in admitted] == [100, 200, 300, 400, 500]
    assert len({r.reservation_id for r in admitted}) == 5
    assert rate_counts(vault, grant.grant_id) == {"minute": 5, "day": 5}
    day = spend(vault, grant.grant_id, day_key(now))
    assert day is not None and day.reserved_micros == 1500
    assert holds(vault) == 5


def test_a_group_that_does_not_fit_together_is_admitted_one_by_one(vault: Vault) -> None:
    grant = make_grant(vault, entry("openai"))
    now = utcnow()
    rate_bound = Limits(requests_per_minute=4)
    group = [AdmissionRequest(grant.grant_id, "openai", rate_bound, 0, now) for _ in range(6)]
    results = Admission(vault.engine).admit_many(group)
    assert [type(r).__name__ for r in results] == ["Admitted"] * 4 + ["RateLimited"] * 2
    assert [r.rate.remaining for r in results if isinstance(r, Admitted) and r.rate] == [3, 2, 1, 0]
    assert rate_counts(vault, grant.grant_id) == {"minute": 4}
    # Spend-bound: the summed worst case does not fit, the first three do.
    other = make_grant(vault, entry("openai"))
    spend_bound = Limits(total_spend=1000)
    group = [AdmissionRequest(other.grant_id, "openai", spend_bound, 300, now) for _ in range(4)]
    results = Admission(vault.engine).admit_many(group)
    assert [type(r).__name__ for r in results] == ["Admitted"] * 3 + ["BudgetHeld"]
    total = spend(vault, other.grant_id, "total")
    assert total is not None and total.reserved_micros == 900
    assert holds(vault) == 4 + 3
