"""The outbox's database side: claim due deliveries, record how each attempt went.

One delivery per event across replicas: a worker claims rows with a lease in one short
transaction. On PostgreSQL the rows are picked with ``SELECT ... FOR UPDATE SKIP LOCKED``,
so two replicas never pick the same row and never wait on each other; on SQLite the
``UPDATE`` holds the database's write lock, so two workers' claims run one after the
other, and the lease condition, checked again in the ``UPDATE``, lets only the first win.
A worker that dies mid-delivery loses its lease when it runs out, and another worker sends
the event again (at least once; the ``webhook-id`` lets a receiver drop a repeat).

Order: an endpoint gets its events one at a time in ``seq`` order. Only the oldest pending
delivery of an endpoint can be claimed, so a receiver that was down gets every event, in
the order they happened, once it is back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.engine import Connection, Engine

from okap_server.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

DELIVERY: Any = WebhookDelivery.__table__  # type: ignore[attr-defined]
ENDPOINT: Any = WebhookEndpoint.__table__  # type: ignore[attr-defined]
EVENT: Any = WebhookEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``base * 2**(n-1)``, at most ``cap``, each delay
    spread by +/- ``jitter`` so retries of many endpoints do not come in step. The defaults
    (30 s doubling to 4 h, 15 attempts: 24 h) span about a day before the endpoint is
    disabled."""

    base_seconds: float = 30.0
    cap_seconds: float = 4 * 3600.0
    max_attempts: int = 15
    jitter: float = 0.2

    def delay(self, attempts: int) -> timedelta:
        raw = min(self.base_seconds * 2 ** max(attempts - 1, 0), self.cap_seconds)
        spread = 1 + random.uniform(-self.jitter, self.jitter)
        return timedelta(seconds=raw * spread)


@dataclass(frozen=True)
class Claimed:
    """One delivery this worker holds the lease of, with what it needs to send it."""

    seq: int
    event_id: str
    endpoint_id: str
    attempts: int
    payload: dict[str, Any]
    created_at: datetime
    url: str
    account_id: str
    master_key_id: str
    nonce: bytes
    ciphertext: bytes


def _due(now: datetime) -> Any:
    earlier = DELIVERY.alias("earlier")
    return and_(
        DELIVERY.c.status == "pending",
        DELIVERY.c.next_attempt_at <= now,
        or_(DELIVERY.c.lease_until.is_(None), DELIVERY.c.lease_until < now),
        ~exists().where(
            earlier.c.endpoint_id == DELIVERY.c.endpoint_id,
            earlier.c.status == "pending",
            earlier.c.seq < DELIVERY.c.seq,
        ),
        DELIVERY.c.endpoint_id.in_(select(ENDPOINT.c.id).where(ENDPOINT.c.disabled_at.is_(None))),
    )


def claim(engine: Engine, owner: str, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries (at most one per endpoint) to ``owner``."""
    with engine.begin() as conn:
        pick = select(DELIVERY.c.seq).where(_due(now)).order_by(DELIVERY.c.seq).limit(limit)
        if conn.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        ids = [row[0] for row in conn.execute(pick)]
        if not ids:
            return []
        until = now + lease
        conn.execute(
            update(DELIVERY)
            .where(
                DELIVERY.c.seq.in_(ids),
                DELIVERY.c.status == "pending",
                or_(DELIVERY.c.lease_until.is_(None), DELIVERY.c.lease_until < now),
            )
            .values(lease_owner=owner, lease_until=until)
        )
        rows = conn.execute(
            select(
                DELIVERY.c.seq,
                DELIVERY.c.event_id,
                DELIVERY.c.endpoint_id,
                DELIVERY.c.attempts,
                EVENT.c.payload,
                EVENT.c.created_at,
                ENDPOINT.c.url,
                ENDPOINT.c.account_id,
                ENDPOINT.c.master_key_id,
                ENDPOINT.c.nonce,
                ENDPOINT.c.ciphertext,
            )
            .join(EVENT, EVENT.c.id == DELIVERY.c.event_id)
            .join(ENDPOINT, ENDPOINT.c.id == DELIVERY.c.endpoint_id)
            .where(
                DELIVERY.c.seq.in_(ids),
                DELIVERY.c.lease_owner == owner,
                DELIVERY.c.lease_until == until,
            )
            .order_by(DELIVERY.c.seq)
        )
        return [Claimed(*row) for row in rows]


def _mine(item: Claimed, owner: str) -> Any:
    return and_(DELIVERY.c.seq == item.seq, DELIVERY.c.lease_owner == owner)


def delivered(engine: Engine, item: Claimed, owner: str, status: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(DELIVERY)
            .where(_mine(item, owner))
            .values(
                status="delivered",
                attempts=item.attempts + 1,
                last_status=status,
                last_error=None,
                delivered_at=now,
                lease_until=None,  # the owner stays: which worker delivered it
            )
        )


def failed(
    engine: Engine,
    item: Claimed,
    owner: str,
    error: str,
    status: int | None,
    now: datetime,
    policy: RetryPolicy,
) -> bool:
    """Record a failed attempt and schedule the next one. True when that was the last
    attempt: the delivery is given up and the endpoint disabled (``disable``)."""
    attempts = item.attempts + 1
    last = attempts >= policy.max_attempts
    with engine.begin() as conn:
        conn.execute(
            update(DELIVERY)
            .where(_mine(item, owner))
            .values(
                status="failed" if last else "pending",
                attempts=attempts,
                last_status=status,
                last_error=error[:300],
                next_attempt_at=now + policy.delay(attempts),
                lease_owner=None,
                lease_until=None,
            )
        )
        if last:
            disable(conn, item.endpoint_id, now, f"{attempts} attempts failed; last: {error}")
    return last


def disable(conn: Connection, endpoint_id: str, now: datetime, reason: str) -> None:
    """Stop sending to an endpoint that kept failing: it gets no new events, and what was
    waiting for it is marked failed (the dashboard shows the endpoint disabled and why)."""
    conn.execute(
        update(ENDPOINT)
        .where(ENDPOINT.c.id == endpoint_id, ENDPOINT.c.disabled_at.is_(None))
        .values(disabled_at=now, disabled_reason=reason[:300])
    )
    conn.execute(
        update(DELIVERY)
        .where(DELIVERY.c.endpoint_id == endpoint_id, DELIVERY.c.status == "pending")
        .values(status="failed", last_error="endpoint disabled", lease_owner=None, lease_until=None)
    )


def purge(engine: Engine, now: datetime, keep: timedelta) -> int:
    """Forget deliveries that ended (delivered or given up) more than ``keep`` ago, and the
    events nothing waits for any more; how many events. A once-only event's marker goes
    with it after ``keep``: by then its period, or its grant, has long ended."""
    cutoff = now - keep
    with engine.begin() as conn:
        conn.execute(
            DELIVERY.delete().where(DELIVERY.c.status != "pending", DELIVERY.c.created_at < cutoff)
        )
        waiting = select(DELIVERY.c.event_id).where(DELIVERY.c.event_id == EVENT.c.id)
        result = conn.execute(EVENT.delete().where(EVENT.c.created_at < cutoff, ~exists(waiting)))
        return int(result.rowcount or 0)
