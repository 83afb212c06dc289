"""The proxy's writer: audit rows and spend settlement, off the hot path, in batches.

Handlers hand an :class:`Outcome` to :meth:`Recorder.submit` (no I/O but the journal's
append). A background task writes what has gathered every
``Settings.proxy_audit_flush_seconds`` in one transaction (``settlement.py``), sweeps stale
reservations now and then, replays the journals of processes that died, and flushes
everything on a clean shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Collection

import anyio.to_thread
from sqlalchemy.engine import Engine

from okap_server.clock import utcnow
from okap_server.proxy.accounting.budget import SqlBudget
from okap_server.proxy.accounting.settlement import (
    UNKNOWN_ENDPOINT,
    audit_swept,
    settle,
    sweep_stale,
    write_batch,
)
from okap_server.proxy.journal import SettlementJournal, read_segment
from okap_server.proxy.outcome import Outcome, unknown_outcome_log_id
from okap_server.settings import DefaultLimits

__all__ = [
    "UNKNOWN_ENDPOINT",
    "Outcome",
    "Recorder",
    "audit_swept",
    "settle",
    "sweep_stale",
    "unknown_outcome_log_id",
    "write_batch",
]

log = logging.getLogger("okap.proxy.recorder")

MAX_PENDING = 100_000
BATCH_SIZE = 1_000


class Recorder:
    """Gathers outcomes on the event loop and writes them in batches.

    ``settle_now`` lets the admission thread settle, at once, the finished requests of a
    grant whose budget is in the way (``admission.py``), so a hold never outlives its
    request for a flush interval when it matters. The pending list is shared with that
    thread, so it is only touched under ``_mutex``.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        flush_seconds: float,
        sweep_seconds: float,
        budget: SqlBudget | None = None,
        journal: SettlementJournal | None = None,
        defaults: DefaultLimits | None = None,
    ) -> None:
        self.engine = engine
        self.defaults = defaults  # limits of a grant entry stored without any (thresholds)
        self.budget = budget or SqlBudget()
        self.flush_seconds = flush_seconds
        self.sweep_seconds = sweep_seconds
        self.journal = journal
        self._pending: list[Outcome] = []
        self._writing = 0  # batches taken off the pending list and being written
        self._mutex = threading.Lock()
        self._written = threading.Condition(self._mutex)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._lock = asyncio.Lock()
        self._orphans_left = True

    def submit(self, outcome: Outcome) -> None:
        """On the event loop, before the request's answer goes out, which waits for
        :meth:`written` (so the journal has it if the process dies before the next
        flush)."""
        if self.journal is not None:
            self.journal.append(outcome)
        with self._mutex:
            pending = self._pending
            if len(pending) >= MAX_PENDING:
                log.error("audit backlog full; dropping the oldest record")
                pending.pop(0)
            pending.append(outcome)
            wake = len(pending) >= 200
        if wake and self._wake is not None:
            self._wake.set()

    async def written(self, *, at_once: bool = False) -> None:
        """Returns once the journal has every outcome submitted so far (see
        ``SettlementJournal.written``): an answer waits for this before it goes out."""
        if self.journal is not None:
            await self.journal.written(at_once=at_once)

    def _take(self, count: int) -> list[Outcome]:
        """Up to ``count`` outcomes to write; :meth:`_done` must follow a non-empty batch."""
        with self._mutex:
            batch = self._pending[:count]
            del self._pending[:count]
            if batch:
                self._writing += 1
        return batch

    def _done(self, batch: list[Outcome], *, written: bool) -> None:
        with self._mutex:
            if not written:
                self._pending[:0] = batch
            self._writing -= 1
            self._written.notify_all()

    def _all_written(self) -> bool:
        with self._mutex:
            return not self._pending and not self._writing

    def settle_now(self, keys: Collection[tuple[str, str]], wait: float = 1.0) -> bool:
        """From any thread: write the finished requests holding budget of these (grant,
        provider) entries, or of every grant of an account named ``("account", id)``, in
        a transaction of their own, or, if a flush has taken them already, wait (at most
        ``wait`` seconds) for it to be written. True if a refused hold may fit now."""
        with self._mutex:
            taken = [
                o
                for o in self._pending
                if o.reserved_periods
                and ((o.grant_id, o.provider) in keys or ("account", o.account_id) in keys)
            ]
            if not taken:
                if not self._writing:
                    return False
                self._written.wait_for(lambda: not self._writing, timeout=wait)
                return not self._writing
            chosen = {id(o) for o in taken}
            self._pending[:] = [o for o in self._pending if id(o) not in chosen]
            self._writing += 1
        try:
            write_batch(self.engine, self.budget, taken, self.defaults)
        except Exception as exc:  # the database is away: the recorder writes them later
            log.error("could not settle %d proxy records: %s", len(taken), type(exc).__name__)
            self._done(taken, written=False)
            return False
        self._done(taken, written=True)
        return True

    def start(self) -> None:
        if self.journal is not None:
            self.journal.open()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="okap-proxy-recorder")

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while not self._closing:
            if self._orphans_left:  # before the first sweep: real costs, not worst cases
                await self.replay_orphans()
            await self.flush()
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + self.sweep_seconds
                await self.sweep()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
            self._wake.clear()

    async def replay_orphans(self) -> None:
        """Settle what the journals of dead processes hold (idempotent: a settlement they
        had written already changes nothing), then delete them."""
        journal = self.journal
        self._orphans_left = False
        if journal is None:
            return
        for segment in journal.orphans():
            try:
                outcomes = await anyio.to_thread.run_sync(read_segment, segment)
                for start in range(0, len(outcomes), BATCH_SIZE):
                    batch = outcomes[start : start + BATCH_SIZE]
                    await anyio.to_thread.run_sync(
                        write_batch, self.engine, self.budget, batch, self.defaults
                    )
            except Exception as exc:  # the database is away: try again next time
                log.error("could not replay a settlement journal: %s", type(exc).__name__)
                segment.close(delete=False)
                self._orphans_left = True
                continue
            segment.close(delete=True)
            if outcomes:
                log.warning("settled %d requests from a stopped process's journal", len(outcomes))

    async def flush(self) -> None:
        """Write everything submitted so far (keeps it for the next try on failure: a
        batch whose commit was lost is written again, which :func:`settle` makes safe).
        Once everything is written, the journal's sealed segments are deleted."""
        async with self._lock:
            if self.journal is not None:
                self.journal.seal()
            while batch := self._take(BATCH_SIZE):
                try:
                    await anyio.to_thread.run_sync(
                        write_batch, self.engine, self.budget, batch, self.defaults
                    )
                except BaseException as exc:  # the database is away: keep them, try again
                    self._done(batch, written=False)
                    if not isinstance(exc, Exception):
                        raise
                    log.error(
                        "could not write %d proxy records: %s", len(batch), type(exc).__name__
                    )
                    return
                self._done(batch, written=True)
            if self.journal is not None and self._all_written():
                self.journal.release_sealed()

    async def sweep(self) -> None:
        def run() -> int:
            with self.engine.begin() as conn:
                return sweep_stale(conn, self.budget, utcnow())

        try:
            swept = await anyio.to_thread.run_sync(run)
        except Exception as exc:
            log.error("reservation sweep failed: %s", type(exc).__name__)
            return
        if swept:
            log.warning("charged %d stale spend reservations at their worst case", swept)

    async def aclose(self) -> None:
        """Stop the loop and flush what is left (a clean shutdown loses nothing; if the
        database is away, the journal keeps it for the next process to start)."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
        if self.journal is not None:
            self.journal.close(delete=self._all_written())
