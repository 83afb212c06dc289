"""The event loop's side of group admission: requests wait here while one admission thread
per process admits every waiting request in one transaction (``admission.py``)."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import TimeoutError as DatabaseTimeout

from okap_server.grants.view import NO_CEILINGS, Ceilings, Limits
from okap_server.proxy.accounting.admission import (
    Admission,
    AdmissionRequest,
    AdmissionResult,
    Admitted,
)
from okap_server.proxy.accounting.lone import LoneAdmission
from okap_server.proxy.errors import BudgetHeld

MAX_GROUP = 128
WATCH_SECONDS = 0.25  # how often waiting requests are checked against their deadline


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
        ceilings: Ceilings = NO_CEILINGS,
    ) -> Admitted:
        """``alone``: no other request is in flight, so there is no group to wait for."""
        request = AdmissionRequest(grant_id, provider, limits, amount, now, ceilings)
        if alone and self.lone is not None and self._thread is not None:
            result = self.lone.try_admit(request)
            if isinstance(result, Admitted):
                return result
            # A hold refused for holds alone goes to the thread, which may settle them.
            if isinstance(result, Exception) and not isinstance(result, BudgetHeld):
                raise result
        if self._thread is None:  # not started (a tool using the runtime outside serving)
            return await asyncio.to_thread(
                self.admission.admit, grant_id, provider, limits, amount, now, ceilings
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
