"""The proxy's writer: audit rows and spend settlement, off the hot path, in batches.

Handlers hand an :class:`Outcome` to :meth:`Recorder.submit` (no I/O). A background task
writes what has gathered every ``Settings.proxy_audit_flush_seconds`` in one transaction,
sweeps stale reservations now and then, and flushes everything on a clean shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio.to_thread
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from okap_server.authorization.models import Grant
from okap_server.clock import new_id, utcnow
from okap_server.db.cursor import Cursor, Sql
from okap_server.proxy.limits import RELEASE_CHUNK, SqlBudget, SweptHold, insert_for
from okap_server.proxy.models import RequestLog
from okap_server.proxy.providers.base import Usage

log = logging.getLogger("okap.proxy.recorder")

MAX_PENDING = 100_000
BATCH_SIZE = 1_000
GRANT: Any = Grant.__table__  # type: ignore[attr-defined]


@dataclass
class Outcome:
    """One proxied request, as the audit and the spend counters need it. No content."""

    account_id: str
    grant_id: str
    client_name: str
    provider: str
    endpoint: str
    status: int
    model: str | None = None
    capability: str | None = None
    error_type: str | None = None
    latency_ms: float = 0.0
    upstream_latency_ms: float | None = None
    usage: Usage | None = None
    cost_micros: int = 0
    streamed: bool = False
    created_at: datetime = field(default_factory=utcnow)
    # Settlement: whether this request was admitted (counts as a request and a spend),
    # and the hold to release.
    admitted: bool = False
    reservation_id: str | None = None
    reserved_micros: int = 0
    reserved_periods: tuple[str, ...] = ()
    # What to bill if the request ends with no answer seen (its worst case).
    unknown_outcome_cost: int = 0
    # Never forwarded, admission interrupted: only release the hold (no request, no spend).
    abandoned: bool = False
    day: str = ""
    month: str = ""
    # Stored objects the answer named, which the grant owns from now on (``ownership.py``).
    owned: tuple[str, ...] = ()

    # The audit row's id, fixed once: derived from the admission, or new for a refusal.
    audit_id: str = ""

    def log_id(self) -> str:
        if not self.audit_id:
            rid = self.reservation_id
            self.audit_id = unknown_outcome_log_id(rid) if rid else new_id("log_")
        return self.audit_id

    def log_row(self) -> dict[str, Any]:
        """The ``request_log`` row, as the plain dict a bulk insert takes (building a
        SQLModel object per request cost 18x more on the hot path: bench/components.py)."""
        usage = self.usage or Usage()
        upstream = self.upstream_latency_ms
        return {
            "id": self.log_id(),
            "created_at": self.created_at,
            "account_id": self.account_id,
            "grant_id": self.grant_id,
            "client_name": self.client_name[:200],
            "provider": self.provider,
            "model": self.model[:200] if self.model else None,
            "endpoint": self.endpoint[:300],
            "capability": self.capability,
            "status": self.status,
            "error_type": self.error_type,
            "latency_ms": round(self.latency_ms, 3),
            "upstream_latency_ms": round(upstream, 3) if upstream is not None else None,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_tokens": usage.cached_tokens,
            "cost_micros": self.cost_micros,
            "streamed": self.streamed,
        }


UNKNOWN_ENDPOINT = "(unknown: the vault stopped before recording this request)"
LOG: Any = RequestLog.__table__  # type: ignore[attr-defined]
_LOG_COLUMNS = [column.name for column in LOG.columns]
# Settlement runs these for every request, so on the driver's cursor (``db/cursor.py``).
# An audit row's id is its admission's (``log_id``): written a second time (a commit whose
# acknowledgement was lost, then retried), it conflicts and is skipped.
_INSERT_LOG = Sql(
    f"INSERT INTO request_log ({', '.join(_LOG_COLUMNS)}) "  # noqa: S608 (the table's columns)
    f"VALUES ({', '.join(':' + name for name in _LOG_COLUMNS)}) "
    "ON CONFLICT (id) DO NOTHING"
)
_LAST_USED = Sql('UPDATE "grant" SET last_used_at = :when WHERE id = :id')
_OWN = Sql(
    "INSERT INTO owned_object (grant_id, provider, object_id, created_at) "
    "VALUES (:g, :p, :o, :at) ON CONFLICT DO NOTHING"
)
# The sweeper's rows say ``status = 0``: the vault never saw how the request ended.
SWEPT_STATUS = 0


def unknown_outcome_log_id(reservation_id: str) -> str:
    """The audit row of an admitted request: the one its settlement writes, or the one the
    sweeper writes for it if its hold went stale first (a late settlement replaces it)."""
    return "log_" + reservation_id.removeprefix("rsv_")


def audit_swept(conn: Connection, swept: list[SweptHold]) -> None:
    """One audit row per stale hold: a request the vault admitted but never recorded (its
    process was killed), so the audit has every request that may have been answered."""
    if not swept:
        return
    ids = sorted({hold.grant_id for hold in swept})
    grants = {
        row.id: row
        for row in conn.execute(
            select(GRANT.c.id, GRANT.c.account_id, GRANT.c.client_name).where(GRANT.c.id.in_(ids))
        )
    }
    rows = [
        RequestLog(
            id=unknown_outcome_log_id(hold.reservation_id),
            created_at=hold.created_at,
            account_id=grants[hold.grant_id].account_id,
            grant_id=hold.grant_id,
            client_name=(grants[hold.grant_id].client_name or "")[:200],
            provider=hold.provider,
            endpoint=UNKNOWN_ENDPOINT,
            status=SWEPT_STATUS,
            error_type="outcome_unknown",
            cost_micros=hold.amount_micros,
        ).model_dump()
        for hold in swept
        if hold.grant_id in grants
    ]
    if rows:
        conn.execute(insert_for(conn, LOG).on_conflict_do_nothing(), rows)


def sweep_stale(conn: Connection, budget: SqlBudget, now: datetime) -> int:
    """Charge the stale holds (``SqlBudget.sweep``) and write their audit rows, in the
    caller's transaction: the audit row is what a late settlement corrects (``settle``)."""
    swept: list[SweptHold] = []
    count = budget.sweep(conn, now, swept_out=swept)
    audit_swept(conn, swept)
    return count


def _take_swept_rows(conn: Connection, log_ids: list[str]) -> dict[str, int]:
    """Delete the sweeper's audit rows among ``log_ids``; the cost each had charged.

    Only for requests whose hold was gone at settlement (rare): swept, or settled already."""
    taken: dict[str, int] = {}
    for start in range(0, len(log_ids), RELEASE_CHUNK):
        chunk = log_ids[start : start + RELEASE_CHUNK]
        rows = conn.execute(
            delete(LOG)
            .where(LOG.c.id.in_(chunk), LOG.c.status == SWEPT_STATUS)
            .returning(LOG.c.id, LOG.c.cost_micros)
        )
        taken.update((str(log_id), int(cost)) for log_id, cost in rows)
    return taken


def settle(conn: Connection, budget: SqlBudget, batch: list[Outcome]) -> None:
    """Settle holds, add spend and requests to counters, write audit rows, in the caller's
    transaction. Idempotent: writing the same batch again changes nothing.

    Every adjustment is justified by a row this transaction changes, so it is applied once
    however often the batch is written: a hold is released, and its request's spend added,
    only if this transaction deletes its ``reservation`` row; a stale hold the sweeper
    charged is corrected only if this transaction deletes the sweeper's audit row. A
    request whose hold and swept row are both gone was settled already: its audit row is
    there (the insert skips it) and nothing is added."""
    deltas: dict[tuple[str, str, str], list[int]] = {}
    last_used: dict[str, datetime] = {}
    held = budget.release_many(
        conn, [i.reservation_id for i in batch if i.admitted and i.reservation_id]
    )
    unheld = [
        i.log_id()
        for i in batch
        if i.admitted and not i.abandoned and i.reservation_id and i.reservation_id not in held
    ]
    swept = _take_swept_rows(conn, unheld) if unheld else {}
    rows: list[dict[str, Any]] = []
    for item in batch:
        rid = item.reservation_id
        if item.abandoned:  # never forwarded: release the hold, if it is still there
            if rid in held:
                for period in item.reserved_periods:
                    key = (item.grant_id, item.provider, period)
                    deltas.setdefault(key, [0, 0, 0])[1] -= item.reserved_micros
            continue
        rows.append(item.log_row())
        if not item.admitted:
            continue
        spent, counted = item.cost_micros, 1
        if rid is not None:
            if rid in held:
                for period in item.reserved_periods:
                    key = (item.grant_id, item.provider, period)
                    deltas.setdefault(key, [0, 0, 0])[1] -= item.reserved_micros
            elif item.log_id() in swept:  # the sweeper charged and counted it: correct it
                spent, counted = item.cost_micros - swept[item.log_id()], 0
            else:  # settled already (this batch was written before): nothing to add
                continue
        previous = last_used.get(item.grant_id, item.created_at)
        last_used[item.grant_id] = max(item.created_at, previous)
        for period in ("total", item.day, item.month):
            entry = deltas.setdefault((item.grant_id, item.provider, period), [0, 0, 0])
            entry[0] += spent
            entry[2] += counted
    budget.apply(conn, deltas)
    cursor = Cursor(conn)
    for row in rows:
        row["created_at"] = cursor.timestamp(row["created_at"])
    cursor.run_many(_INSERT_LOG, rows)
    cursor.run_many(
        _LAST_USED,
        [{"id": g, "when": cursor.timestamp(when)} for g, when in sorted(last_used.items())],
    )
    cursor.run_many(
        _OWN,
        [
            {"g": i.grant_id, "p": i.provider, "o": o, "at": cursor.timestamp(i.created_at)}
            for i in batch
            if i.admitted and not i.abandoned
            for o in i.owned
        ],
    )


def write_batch(engine: Engine, budget: SqlBudget, batch: list[Outcome]) -> None:
    """Settle ``batch`` in one transaction of its own (see :func:`settle`)."""
    with engine.begin() as conn:
        settle(conn, budget, batch)


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
    ) -> None:
        self.engine = engine
        self.budget = budget or SqlBudget()
        self.flush_seconds = flush_seconds
        self.sweep_seconds = sweep_seconds
        self._pending: list[Outcome] = []
        self._mutex = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._lock = asyncio.Lock()

    def submit(self, outcome: Outcome) -> None:
        with self._mutex:
            pending = self._pending
            if len(pending) >= MAX_PENDING:
                log.error("audit backlog full; dropping the oldest record")
                pending.pop(0)
            pending.append(outcome)
            wake = len(pending) >= 200
        if wake and self._wake is not None:
            self._wake.set()

    def _take(self, count: int) -> list[Outcome]:
        with self._mutex:
            batch = self._pending[:count]
            del self._pending[:count]
        return batch

    def _give_back(self, batch: list[Outcome]) -> None:
        with self._mutex:
            self._pending[:0] = batch

    def settle_now(self, keys: Collection[tuple[str, str]]) -> bool:
        """From any thread: write the finished requests holding budget of these (grant,
        provider) entries, in a transaction of their own. True if any was written (so a
        refused hold may fit now)."""
        with self._mutex:
            taken = [
                o for o in self._pending if o.reserved_periods and (o.grant_id, o.provider) in keys
            ]
            if not taken:
                return False
            chosen = {id(o) for o in taken}
            self._pending[:] = [o for o in self._pending if id(o) not in chosen]
        try:
            write_batch(self.engine, self.budget, taken)
        except Exception as exc:  # the database is away: the recorder writes them later
            log.error("could not settle %d proxy records: %s", len(taken), type(exc).__name__)
            self._give_back(taken)
            return False
        return True

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="okap-proxy-recorder")

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
            self._wake.clear()
            await self.flush()
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + self.sweep_seconds
                await self.sweep()

    async def flush(self) -> None:
        """Write everything submitted so far (keeps it for the next try on failure: a
        batch whose commit was lost is written again, which :func:`settle` makes safe)."""
        async with self._lock:
            while batch := self._take(BATCH_SIZE):
                try:
                    await anyio.to_thread.run_sync(write_batch, self.engine, self.budget, batch)
                except Exception as exc:  # the database is away: keep the records, try again
                    log.error(
                        "could not write %d proxy records: %s", len(batch), type(exc).__name__
                    )
                    self._give_back(batch)
                    return

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
        """Stop the loop and flush what is left (a clean shutdown loses nothing)."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
