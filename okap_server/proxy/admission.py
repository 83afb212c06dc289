"""Admitting a request: its rate windows and its spend hold, committed in groups.

Every request is counted, held and recorded in flight in the database before it is
forwarded (``limits.py``: atomic SQL, so limits hold across workers and replicas, and a
process killed mid-request leaves a trace the sweeper audits). Doing that in one
transaction per request, from a pool of threads, makes concurrent requests queue on the
database's write lock and pay a commit each. Instead, one admission thread per process takes
every admission waiting and runs them in one transaction, one commit for the group, as a
database's own group commit does. A refusal inside the group takes back what that request
counted (``limits.py``), so it counts and holds nothing, as before.

Rows are locked in (grant, provider) order within a group, the order settlement uses, so
groups from different replicas cannot deadlock on PostgreSQL.

A request with no other in flight has no group to join, and the hop to the admission thread
and back would cost it more than its statements do. On SQLite such a lone request is
admitted on the event loop itself (:class:`LoneAdmission`), on a connection that never waits
for the database's write lock: if another writer holds it, the request goes to the
admission thread as any other, which waits as long as the busy timeout allows.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import TimeoutError as DatabaseTimeout

from okap_server.db.cursor import Cursor
from okap_server.proxy.errors import BudgetExceeded, BudgetHeld, RateLimited
from okap_server.proxy.grants import Limits
from okap_server.proxy.limits import (
    RateLimiter,
    RateState,
    SqlBudget,
    SqlRateLimiter,
    day_key,
    month_key,
)

log = logging.getLogger("okap.proxy.admission")

MAX_GROUP = 128
WATCH_SECONDS = 0.25  # how often waiting requests are checked against their deadline


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
        self, grant_id: str, provider: str, limits: Limits, amount: int, now: datetime
    ) -> Admitted:
        """Count and hold one request, or raise RateLimited/BudgetExceeded with nothing
        written (AdmissionInterrupted, or the database's error, if the database is away)."""
        (result,) = self.admit_many([AdmissionRequest(grant_id, provider, limits, amount, now)])
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
        todo = sorted(
            range(len(requests)), key=lambda i: (requests[i].grant_id, requests[i].provider)
        )
        self._run(requests, todo, results)
        if self.settle is not None:
            held = [i for i in todo if isinstance(results[i], BudgetHeld)]
            keys = {(requests[i].grant_id, requests[i].provider) for i in held}
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
        g, p, limits, now = first.grant_id, first.provider, first.limits, first.now
        try:
            counted = self.rate.hit(cursor, g, p, limits, now, requests=len(bucket))
        except RateLimited:
            return False
        total = sum(requests[i].amount for i in bucket)
        try:
            periods = self.budget.hold(cursor, g, p, limits, total, now)
        except BudgetExceeded:
            self.rate.uncount(cursor, g, p, counted)
            return False
        ids = self.budget.record(
            cursor,
            g,
            p,
            [(requests[i].amount, requests[i].now) for i in bucket],
            periods,
            self.reservation_ttl,
        )
        day, month = day_key(now), month_key(now)
        for nth, (i, rid) in enumerate(zip(bucket, ids, strict=True)):
            amount = requests[i].amount
            results[i] = Admitted(counted.state_of(nth), rid, amount, periods, day, month)
        return True

    def _admit_one(self, cursor: Cursor, request: AdmissionRequest) -> Admitted:
        r = request
        counted = self.rate.hit(cursor, r.grant_id, r.provider, r.limits, r.now)
        try:
            rid, periods = self.budget.reserve(
                cursor, r.grant_id, r.provider, r.limits, r.amount, r.now, self.reservation_ttl
            )
        except BudgetExceeded as exc:
            self.rate.uncount(cursor, r.grant_id, r.provider, counted)
            tightest = counted.tightest
            if tightest is not None:  # as it stands with this request taken back out
                exc.headers.update(replace(tightest, remaining=tightest.remaining + 1).headers())
            raise
        return Admitted(counted.tightest, rid, r.amount, periods, day_key(r.now), month_key(r.now))


def _buckets(requests: Sequence[AdmissionRequest], order: Sequence[int]) -> list[list[int]]:
    """``order`` cut into runs of requests that can be counted together: the same grant
    entry and limits, in the same minute (which fixes the day and month too)."""
    buckets: list[list[int]] = []
    last: tuple[str, str, int, Limits] | None = None
    for i in order:
        r = requests[i]
        key = (r.grant_id, r.provider, int(r.now.timestamp() // 60), r.limits)
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


class LoneAdmission:
    """SQLite only: one request admitted on the event loop's own connection, which never
    waits for the write lock (``busy_timeout=0``) and never checkpoints the WAL (other
    connections do), so the loop is held only for the statements themselves."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self._conn: Connection | None = None

    @staticmethod
    def supported(engine: Engine) -> bool:
        return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")

    def try_admit(self, request: AdmissionRequest) -> AdmissionResult | None:
        """The request's result, or None if it could not be tried here (the write lock is
        taken, or any other error): nothing was written, and the caller queues it."""
        results: list[AdmissionResult | None] = [None]
        try:
            conn = self._connection()
            driver = conn.connection.dbapi_connection
            assert driver is not None
        except Exception:
            self.close()
            return None
        # The transaction is the driver's own (sqlite3 begins it at the first write): no
        # statement here goes through SQLAlchemy, so its bookkeeping is skipped too.
        try:
            self.admission.run_group(conn, [request], [0], results)
            driver.commit()
        except Exception:
            try:
                driver.rollback()
            except Exception:
                self.close()
            return None
        return results[0]

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            conn = self.admission.engine.connect()
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            conn.commit()
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Its connection is not given back to the pool: its pragmas are not the pool's."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()
            conn.close()


def _give_up(future: asyncio.Future[Admitted]) -> None:
    """The request stops waiting: it is answered 503 as for any database error (and, as for
    those, not audited: the audit lives in the database that did not answer)."""
    if not future.done():
        future.set_exception(DatabaseTimeout("the database did not admit the request in time"))


@dataclass
class _Waiting:
    request: AdmissionRequest
    future: asyncio.Future[Admitted]


class AdmissionQueue:
    """The event loop's side of group admission: ``await admit(...)`` queues the request
    for the admission thread and wakes when its group has committed.

    ``on_orphan`` gets a hold admitted for a request that stopped waiting (its app left,
    the server is stopping, or the database took longer than ``wait_seconds``), so the
    caller can release it at once instead of leaving it to the sweeper. ``lone`` admits a
    request that is alone in flight on the loop itself (SQLite).

    A request waits at most ``wait_seconds`` for its group to commit, then gets a database
    timeout (answered 503 ``vault_unavailable``): a database that accepts connections but
    never answers (a paused VM, a stuck disk) holds the admission thread, never the app.
    """

    def __init__(
        self,
        admission: Admission,
        *,
        on_orphan: Callable[[AdmissionRequest, Admitted], None] | None = None,
        max_group: int = MAX_GROUP,
        lone: LoneAdmission | None = None,
        wait_seconds: float = 5.0,
    ) -> None:
        self.admission = admission
        self.on_orphan = on_orphan
        self.lone = lone
        self.max_group = max_group
        self.wait_seconds = wait_seconds
        self._deadlines: deque[tuple[float, asyncio.Future[Admitted]]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """In the serving event loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="okap-admission", daemon=True)
        self._thread.start()

    async def admit(
        self,
        grant_id: str,
        provider: str,
        limits: Limits,
        amount: int,
        now: datetime,
        *,
        alone: bool = False,
    ) -> Admitted:
        """``alone``: no other request is in flight, so there is no group to wait for."""
        request = AdmissionRequest(grant_id, provider, limits, amount, now)
        if alone and self.lone is not None and self._thread is not None:
            result = self.lone.try_admit(request)
            if isinstance(result, Admitted):
                return result
            # A hold refused for holds alone goes to the thread, which may settle them.
            if isinstance(result, Exception) and not isinstance(result, BudgetHeld):
                raise result
        if self._thread is None:  # not started (a tool using the runtime outside serving)
            return await asyncio.to_thread(
                self.admission.admit, grant_id, provider, limits, amount, now
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Admitted] = loop.create_future()
        # Not a timer per request (asyncio.wait_for, call_later): this is every request's
        # path. One watchdog, while requests wait, gives up on those past their deadline.
        self._deadlines.append((loop.time() + self.wait_seconds, future))
        if self._watchdog is None:
            self._watchdog = loop.call_later(WATCH_SECONDS, self._watch)
        self._queue.put(_Waiting(request, future))
        return await future

    def _watch(self) -> None:
        """Give up on the requests waiting past their deadline (they are answered 503);
        deadlines come in order, so only the oldest are looked at."""
        self._watchdog = None
        assert self._loop is not None
        now = self._loop.time()
        deadlines = self._deadlines
        while deadlines and (deadlines[0][1].done() or deadlines[0][0] <= now):
            _, future = deadlines.popleft()
            _give_up(future)
        if deadlines:
            self._watchdog = self._loop.call_later(WATCH_SECONDS, self._watch)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stopping = False
            while len(group) < self.max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
            try:
                results = self.admission.admit_many([w.request for w in group])
            except Exception as exc:
                results = [exc] * len(group)
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._resolve, group, results)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                return
            if stopping:
                return

    def _resolve(self, group: list[_Waiting], results: list[AdmissionResult]) -> None:
        for waiting, result in zip(group, results, strict=True):
            future = waiting.future
            if future.done():  # cancelled, or given up on: nobody forwards it
                if isinstance(result, Admitted) and self.on_orphan is not None:
                    self.on_orphan(waiting.request, result)
            elif isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(thread.join)
        if self.lone is not None:
            self.lone.close()
