"""Settlement: a batch of outcomes written in one transaction, exactly once in effect.

Each admitted request releases its hold, adds its cost and one request to the spend
counters (total, its day, week and month, and its account's and key's ceilings') and
writes its audit row; the sweeper charges the
holds of requests whose process died (``sweep_stale``). A batch may be written more than
once: a commit whose acknowledgement was lost is retried, and a dead process's journal is
replayed (``journal.py``). :func:`settle` makes that safe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from okap_server.db.cursor import Cursor, Sql
from okap_server.db.dialect import insert_for
from okap_server.grants.models import Grant
from okap_server.grants.periods import counter_of, day_key, month_key, week_key
from okap_server.proxy.accounting.budget import SqlBudget, SweptHold
from okap_server.proxy.accounting.deltas import Deltas
from okap_server.proxy.accounting.statements import RELEASE_CHUNK
from okap_server.proxy.accounting.thresholds import note_crossings, note_failing_keys
from okap_server.proxy.key_usage import touch_keys
from okap_server.proxy.models import RequestLog
from okap_server.proxy.outcome import Outcome, unknown_outcome_log_id
from okap_server.settings import DefaultLimits

GRANT: Any = Grant.__table__  # type: ignore[attr-defined]

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


def settle(
    conn: Connection,
    budget: SqlBudget,
    batch: list[Outcome],
    defaults: DefaultLimits | None = None,
) -> None:
    """Settle holds, add spend and requests to counters, write audit rows, in the caller's
    transaction. Idempotent: writing the same batch again changes nothing.

    Every adjustment is justified by a row this transaction changes, so it is applied once
    however often the batch is written: a hold is released, and its request's spend added,
    only if this transaction deletes its ``reservation`` row; a stale hold the sweeper
    charged is corrected only if this transaction deletes the sweeper's audit row. A
    request whose hold and swept row are both gone was settled already: its audit row is
    there (the insert skips it) and nothing is added. ``defaults`` (the vault's default
    limits) are the limits of a grant entry stored without any, for ``budget.threshold``."""
    deltas = Deltas()
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
        deltas.place(item.grant_id, item.provider, item.account_id, item.key_id, item.ancestors)
        if item.abandoned:  # never forwarded: release the hold, if it is still there
            if rid in held:
                _release(deltas, item)
            continue
        rows.append(item.log_row())
        if not item.admitted:
            continue
        spent, counted = item.cost_micros, 1
        if rid is not None:
            if rid in held:
                _release(deltas, item)
            elif item.log_id() in swept:  # the sweeper charged and counted it: correct it
                spent, counted = item.cost_micros - swept[item.log_id()], 0
            else:  # settled already (this batch was written before): nothing to add
                continue
        when = item.created_at
        previous = last_used.get(item.grant_id, item.created_at)
        last_used[item.grant_id] = max(item.created_at, previous)
        deltas.charge(
            item.grant_id,
            item.provider,
            (item.day or day_key(when), week_key(when), item.month or month_key(when)),
            item.account_id,
            item.key_id,
            spent,
            counted,
            item.ancestors,
        )
    budget.apply(conn, deltas)
    note_crossings(conn, deltas, batch, defaults)  # budget.threshold webhooks, in this transaction
    note_failing_keys(conn, batch)
    cursor = Cursor(conn)
    for row in rows:
        row["created_at"] = cursor.timestamp(row["created_at"])
    cursor.run_many(_INSERT_LOG, rows)
    cursor.run_many(
        _LAST_USED,
        [{"id": g, "when": cursor.timestamp(when)} for g, when in sorted(last_used.items())],
    )
    touch_keys(conn, batch)
    cursor.run_many(
        _OWN,
        [
            {"g": i.grant_id, "p": i.provider, "o": o, "at": cursor.timestamp(i.created_at)}
            for i in batch
            if i.admitted and not i.abandoned
            for o in i.owned
        ],
    )


def _release(deltas: Deltas, item: Outcome) -> None:
    """Take an outcome's hold off every row it was held on (its own and its ceilings')."""
    for entry in item.reserved_periods:
        deltas.add(counter_of(item.grant_id, item.provider, entry), reserved=-item.reserved_micros)


def write_batch(
    engine: Engine,
    budget: SqlBudget,
    batch: list[Outcome],
    defaults: DefaultLimits | None = None,
) -> None:
    """Settle ``batch`` in one transaction of its own (see :func:`settle`)."""
    with engine.begin() as conn:
        settle(conn, budget, batch, defaults)
