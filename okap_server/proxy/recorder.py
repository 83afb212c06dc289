"""The proxy's writer: audit rows and spend settlement, off the hot path, in batches.

Handlers hand an :class:`Outcome` to :meth:`Recorder.submit` (no I/O). A background task
writes what has gathered every ``Settings.proxy_audit_flush_seconds`` in one transaction,
sweeps stale reservations now and then, and flushes everything on a clean shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio.to_thread
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from okap_server.authorization.models import Grant
from okap_server.clock import new_id, utcnow
from okap_server.db.cursor import Cursor, Sql
from okap_server.proxy.limits import SqlBudget, SweptHold
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

    def log_row(self) -> dict[str, Any]:
        """The ``request_log`` row, as the plain dict a bulk insert takes (building a
        SQLModel object per request cost 18x more on the hot path: bench/components.py)."""
        usage = self.usage or Usage()
        upstream = self.upstream_latency_ms
        return {
            "id": new_id("log_"),
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
_INSERT_LOG = Sql(
    f"INSERT INTO request_log ({', '.join(_LOG_COLUMNS)}) "  # noqa: S608 (the table's columns)
    f"VALUES ({', '.join(':' + name for name in _LOG_COLUMNS)})"
)
_LAST_USED = Sql('UPDATE "grant" SET last_used_at = :when WHERE id = :id')
_OWN = Sql(
    "INSERT INTO owned_object (grant_id, provider, object_id, created_at) "
    "VALUES (:g, :p, :o, :at) ON CONFLICT DO NOTHING"
)


def unknown_outcome_log_id(reservation_id: str) -> str:
    """The audit row the sweeper writes for a stale hold; a late settlement replaces it."""
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
            status=0,
            error_type="outcome_unknown",
            cost_micros=hold.amount_micros,
        ).model_dump()
        for hold in swept
        if hold.grant_id in grants
    ]
    if rows:
        conn.execute(LOG.insert(), rows)


def write_batch(engine: Engine, budget: SqlBudget, batch: list[Outcome]) -> None:
    """Settle holds, add spend and requests to counters, write audit rows: one transaction."""
    deltas: dict[tuple[str, str, str], list[int]] = {}
    last_used: dict[str, datetime] = {}
    replaced: list[str] = []  # the sweeper's audit rows of holds that settled late
    with engine.begin() as conn:
        held = budget.release_many(
            conn, [i.reservation_id for i in batch if i.admitted and i.reservation_id]
        )
        for item in batch:
            if item.abandoned:
                if item.reservation_id in held:
                    for period in item.reserved_periods:
                        key = (item.grant_id, item.provider, period)
                        deltas.setdefault(key, [0, 0, 0])[1] -= item.reserved_micros
                continue
            if not item.admitted:
                continue
            previous = last_used.get(item.grant_id, item.created_at)
            last_used[item.grant_id] = max(item.created_at, previous)
            spent = item.cost_micros
            if item.reservation_id is not None:
                if item.reservation_id in held:
                    for period in item.reserved_periods:
                        key = (item.grant_id, item.provider, period)
                        deltas.setdefault(key, [0, 0, 0])[1] -= item.reserved_micros
                else:  # the sweeper charged the hold already: correct to the real cost
                    spent -= item.reserved_micros
                    replaced.append(unknown_outcome_log_id(item.reservation_id))
            for period in ("total", item.day, item.month):
                entry = deltas.setdefault((item.grant_id, item.provider, period), [0, 0, 0])
                entry[0] += spent
                entry[2] += 1
        budget.apply(conn, deltas)
        if replaced:
            conn.execute(delete(LOG).where(LOG.c.id.in_(replaced)))
        cursor = Cursor(conn)
        rows = [item.log_row() for item in batch if not item.abandoned]
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


class Recorder:
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
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._lock = asyncio.Lock()

    def submit(self, outcome: Outcome) -> None:
        if len(self._pending) >= MAX_PENDING:
            log.error("audit backlog full; dropping the oldest record")
            self._pending.pop(0)
        self._pending.append(outcome)
        if self._wake is not None and len(self._pending) >= 200:
            self._wake.set()

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
        """Write everything submitted so far (keeps it for the next try on failure)."""
        async with self._lock:
            while self._pending:
                batch = self._pending[:BATCH_SIZE]
                del self._pending[:BATCH_SIZE]
                try:
                    await anyio.to_thread.run_sync(write_batch, self.engine, self.budget, batch)
                except Exception as exc:  # the database is away: keep the records, try again
                    log.error(
                        "could not write %d proxy records: %s", len(batch), type(exc).__name__
                    )
                    self._pending[:0] = batch
                    return

    async def sweep(self) -> None:
        def run() -> int:
            swept: list[SweptHold] = []
            with self.engine.begin() as conn:
                count = self.budget.sweep(conn, utcnow(), swept_out=swept)
                audit_swept(conn, swept)
            return count

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
