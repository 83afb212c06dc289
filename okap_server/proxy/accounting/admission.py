"""Admitting a request: its rate windows and its spend hold, committed in groups.

Every request is counted, held and recorded in flight in the database before it is
forwarded (``budget.py``, ``rate.py``: atomic SQL, so limits hold across workers and
replicas, and a process killed mid-request leaves a trace the sweeper audits). Doing that in one
transaction per request, from a pool of threads, makes concurrent requests queue on the
database's write lock and pay a commit each. Instead, one admission thread per process takes
every admission waiting and runs them in one transaction, one commit for the group, as a
database's own group commit does. A refusal inside the group takes back what that request
counted (``budget.py``, ``rate.py``), so it counts and holds nothing, as before.

Rows are locked in (grant, provider) order within a group, the order settlement uses, so
groups from different replicas cannot deadlock on PostgreSQL.

A request with no other in flight has no group to join, and the hop to the admission thread
and back would cost it more than its statements do. On SQLite such a lone request is
admitted on the event loop itself (``lone.py``), on a connection that never waits for
the database's write lock: if another writer holds it, the request goes to the
admission thread as any other, which waits as long as the busy timeout allows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine

from okap_server.db.cursor import Cursor
from okap_server.proxy.accounting.budget import SqlBudget
from okap_server.proxy.accounting.nesting import count_and_hold_chain
from okap_server.proxy.accounting.periods import day_key, month_key
from okap_server.proxy.accounting.rate import Counted, RateLimiter, RateState, SqlRateLimiter
from okap_server.proxy.errors import BudgetExceeded, BudgetHeld, RateLimited
from okap_server.proxy.grants import NO_CEILINGS, Ceilings, Limits

log = logging.getLogger("okap.proxy.admission")


@dataclass(frozen=True)
class Admitted:
    """A request counted and recorded in flight (``reservation_id``), its hold, if any,
    of ``reserved_micros`` on ``reserved_periods``."""

    rate: RateState | None
    reservation_id: str
    reserved_micros: int
    reserved_periods: tuple[str, ...]
    day: str
    month: str


class AdmissionInterrupted(Exception):
    """The database went away while the admission committed: the hold may or may not be
    stored. The request is not forwarded; ``reservation_id`` is released once the database
    answers again (never charged), so an ambiguous commit holds no budget for long."""

    def __init__(self, reservation_id: str, amount: int, periods: tuple[str, ...]) -> None:
        super().__init__("admission interrupted")
        self.reservation_id = reservation_id
        self.amount = amount
        self.periods = periods


@dataclass(frozen=True)
class AdmissionRequest:
    grant_id: str
    provider: str
    limits: Limits
    amount: int
    now: datetime
    ceilings: Ceilings = NO_CEILINGS

    def lock_order(self) -> tuple[str, str, tuple[str, ...], str]:
        """Requests are admitted in this order, so rows are locked in the order settlement
        applies them (``deltas.py``): by account, key, grant entry. A delegated grant's
        place is its path of ids from the root: sorted so, the rows a group's requests
        lock (each its ancestors' first) come in one increasing order."""
        c = self.ceilings
        return c.account_id, c.key_id or "", (*c.lineage, self.grant_id), self.provider


AdmissionResult = Admitted | Exception


class Admission:
    """Rate windows and spend holds of a group of requests, in one transaction."""

    def __init__(
        self,
        engine: Engine,
        *,
        rate: RateLimiter | None = None,
        budget: SqlBudget | None = None,
        reservation_ttl: timedelta = timedelta(minutes=15),
        settle: Callable[[Collection[tuple[str, str]]], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.rate = rate or SqlRateLimiter()
        self.budget = budget or SqlBudget()
        self.reservation_ttl = reservation_ttl
        self.settle = settle

    def admit(
        self,
        grant_id: str,
        provider: str,
        limits: Limits,
        amount: int,
        now: datetime,
        ceilings: Ceilings = NO_CEILINGS,
    ) -> Admitted:
        """Count and hold one request, or raise RateLimited/BudgetExceeded with nothing
        written (AdmissionInterrupted, or the database's error, if the database is away)."""
        request = AdmissionRequest(grant_id, provider, limits, amount, now, ceilings)
        (result,) = self.admit_many([request])
        if isinstance(result, Exception):
            raise result
        return result

    def admit_many(self, requests: Sequence[AdmissionRequest]) -> list[AdmissionResult]:
        """One result per request, in order: ``Admitted``, or the exception to raise.

        A hold refused only because of holds (``BudgetHeld``) may be in the way of this
        process's own finished requests, whose settlement waits for the recorder's next
        flush: those are settled at once (``settle``) and the refused requests tried again,
        so a budget is never refused while its spend plus its real holds fit. That costs
        two more transactions, on refusals only."""
        results: list[AdmissionResult | None] = [None] * len(requests)
        todo = sorted(range(len(requests)), key=lambda i: requests[i].lock_order())
        self._run(requests, todo, results)
        if self.settle is not None:
            held = [i for i in todo if isinstance(results[i], BudgetHeld)]
            # A ceiling is held by every grant of its account: ("account", id) asks for
            # the finished requests of all of them.
            # So is a delegating grant's limit, by every grant delegated from it.
            keys = {(requests[i].grant_id, requests[i].provider) for i in held} | {
                ("account", requests[i].ceilings.account_id)
                for i in held
                if requests[i].ceilings.set or requests[i].ceilings.nested
            }
            if held and self.settle(keys):
                for i in held:
                    results[i] = None
                self._run(requests, held, results)
        return [r if r is not None else RuntimeError("not admitted") for r in results]

    def _run(
        self,
        requests: Sequence[AdmissionRequest],
        order: Sequence[int],
        results: list[AdmissionResult | None],
    ) -> None:
        try:
            with self.engine.begin() as conn:
                self.run_group(conn, requests, order, results)
        except Exception as exc:
            for i in order:
                results[i] = _failed(results[i], exc)

    def run_group(
        self,
        conn: Connection,
        requests: Sequence[AdmissionRequest],
        order: Sequence[int],
        results: list[AdmissionResult | None],
    ) -> None:
        """The group's statements, in ``order``, inside the caller's transaction.

        Requests of one grant entry that fall in the same windows are first tried
        together: one statement counts all of them in each window and one holds their
        summed worst case, if all of them fit. If they do not, each is tried on its own,
        in order, so the ones that fit are admitted and the rest refused, as before."""
        cursor = Cursor(conn)
        try:
            for bucket in _buckets(requests, order):
                if len(bucket) > 1 and self._admit_together(cursor, requests, bucket, results):
                    continue
                for i in bucket:
                    try:
                        results[i] = self._admit_one(cursor, requests[i])
                    except (RateLimited, BudgetExceeded) as exc:
                        results[i] = exc
        finally:
            cursor.close()

    def _admit_together(
        self,
        cursor: Cursor,
        requests: Sequence[AdmissionRequest],
        bucket: list[int],
        results: list[AdmissionResult | None],
    ) -> bool:
        """Admit every request of ``bucket`` with one statement per table, or none
        (False, nothing written)."""
        first = requests[bucket[0]]
        total = sum(requests[i].amount for i in bucket)
        try:
            counted, periods = self._count_and_hold(cursor, first, total, len(bucket))
        except (RateLimited, BudgetExceeded):
            return False
        ids = self.budget.record(
            cursor,
            first.grant_id,
            first.provider,
            [(requests[i].amount, requests[i].now) for i in bucket],
            periods,
            self.reservation_ttl,
            first.ceilings,
        )
        day, month = day_key(first.now), month_key(first.now)
        for nth, (i, rid) in enumerate(zip(bucket, ids, strict=True)):
            amount = requests[i].amount
            results[i] = Admitted(counted.state_of(nth), rid, amount, periods, day, month)
        return True

    def _count_and_hold(
        self, cursor: Cursor, r: AdmissionRequest, amount: int, requests: int
    ) -> tuple[Counted, tuple[str, ...]]:
        """Count ``requests`` in the rate windows and hold ``amount``, both or neither.

        Under ceilings the hold comes first: its ceiling rows are shared by every grant of
        the account, so they are locked before any grant's own rows (rate windows too),
        the order every transaction takes them in (``deltas.py``)."""
        g, p, limits, now, ceilings = r.grant_id, r.provider, r.limits, r.now, r.ceilings
        if ceilings.nested:  # a delegated grant: its ancestors' limits too
            return count_and_hold_chain(self.budget, self.rate, cursor, r, amount, requests)
        if ceilings.set:
            periods = self.budget.hold(cursor, g, p, limits, amount, now, ceilings)
            try:
                counted = self.rate.hit(cursor, g, p, limits, now, requests=requests)
            except RateLimited:
                self.budget.unhold(cursor, g, p, amount, periods)
                raise
            return counted, periods
        counted = self.rate.hit(cursor, g, p, limits, now, requests=requests)
        try:
            periods = self.budget.hold(cursor, g, p, limits, amount, now)
        except BudgetExceeded as exc:
            self.rate.uncount(cursor, g, p, counted)
            tightest = counted.tightest
            if tightest is not None:  # as it stands with this request taken back out
                remaining = tightest.remaining + requests
                exc.headers.update(replace(tightest, remaining=remaining).headers())
            raise
        return counted, periods

    def _admit_one(self, cursor: Cursor, request: AdmissionRequest) -> Admitted:
        r = request
        counted, periods = self._count_and_hold(cursor, r, r.amount, 1)
        (rid,) = self.budget.record(
            cursor,
            r.grant_id,
            r.provider,
            [(r.amount, r.now)],
            periods,
            self.reservation_ttl,
            r.ceilings,
        )
        return Admitted(counted.tightest, rid, r.amount, periods, day_key(r.now), month_key(r.now))


def _buckets(requests: Sequence[AdmissionRequest], order: Sequence[int]) -> list[list[int]]:
    """``order`` cut into runs of requests that can be counted together: the same grant
    entry and limits, in the same minute (which fixes the day and month too)."""
    buckets: list[list[int]] = []
    last: tuple[str, str, int, Limits, Ceilings] | None = None
    for i in order:
        r = requests[i]
        key = (r.grant_id, r.provider, int(r.now.timestamp() // 60), r.limits, r.ceilings)
        if key == last:
            buckets[-1].append(i)
        else:
            buckets.append([i])
            last = key
    return buckets


def _failed(result: AdmissionResult | None, exc: Exception) -> AdmissionResult:
    """What a request of a group whose transaction failed gets: a refusal stays a refusal
    (it wrote nothing); a stored hold may or may not be committed (interrupted)."""
    if isinstance(result, RateLimited | BudgetExceeded):
        return result
    if isinstance(result, Admitted):
        interrupted = AdmissionInterrupted(
            result.reservation_id, result.reserved_micros, result.reserved_periods
        )
        interrupted.__cause__ = exc
        return interrupted
    return exc
