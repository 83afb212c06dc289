"""Spend counters, in-flight reservations and the audit of proxied requests.

Money is stored in micro-dollars (1e-6 USD) as integers, so atomic SQL arithmetic is exact.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from okap_server.clock import new_id, utcnow


class SpendCounter(SQLModel, table=True):
    """Spent and reserved micro-dollars of one grant's provider entry, or of one ceiling,
    in one period.

    ``period`` is ``total``, ``day:YYYY-MM-DD``, ``week:YYYY-Www`` (ISO) or ``month:YYYY-MM``
    (UTC). A ceiling's row has ``grant_id`` ``account:<id>`` or ``key:<id>`` and provider
    ``*``: one table, so a grant's holds and its ceilings' are one statement
    (``accounting/budget.py``). That is why ``grant_id`` has no foreign key; a grant's rows
    are deleted with it by hand (``delete_counters``).
    """

    __tablename__ = "spend_counter"

    grant_id: str = Field(primary_key=True)
    provider: str = Field(primary_key=True, max_length=32)
    period: str = Field(primary_key=True, max_length=24)
    spent_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    reserved_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    requests: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class Reservation(SQLModel, table=True):
    """Worst-case spend held for one in-flight request until it settles or goes stale."""

    __tablename__ = "reservation"

    id: str = Field(default_factory=lambda: new_id("rsv_"), primary_key=True, max_length=40)
    # No secondary index: every proxied request inserts and deletes a row here, and the
    # table holds only requests in flight, so the sweeper's and a grant delete's scans are
    # short, while each index would be two more writes per request.
    grant_id: str = Field(foreign_key="grant.id", ondelete="CASCADE")
    provider: str = Field(max_length=32)
    amount_micros: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The spend periods this reservation is held against, comma separated
    # (e.g. ``total,day:2026-11-23,account:acc_1/month:2026-11``): only the periods that
    # have a limit; a ceiling's, or a delegating grant's, is ``<scope>/<period>``.
    periods: str = Field(default="", max_length=4000)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    # Whose ceilings the request counts against, so the sweeper can charge them too.
    account_id: str | None = Field(default=None, max_length=40)
    key_id: str | None = Field(default=None, max_length=40)


class RateCounter(SQLModel, table=True):
    """Requests admitted for one grant's provider entry in one fixed window.

    ``window`` is ``minute:<minutes since the epoch>`` or ``day:YYYY-MM-DD`` (UTC).
    """

    __tablename__ = "rate_counter"

    grant_id: str = Field(foreign_key="grant.id", primary_key=True, ondelete="CASCADE")
    provider: str = Field(primary_key=True, max_length=32)
    window: str = Field(primary_key=True, max_length=32)
    count: int = 0
    # When the window is over; the sweeper deletes rows past it.
    expires_at: datetime = Field(index=True)


class RequestLog(SQLModel, table=True):
    """The audit of one proxied request. Never prompts, answers or keys."""

    __tablename__ = "request_log"

    id: str = Field(default_factory=lambda: new_id("log_"), primary_key=True, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    account_id: str = Field(index=True, max_length=40)
    grant_id: str | None = Field(default=None, index=True, max_length=40)
    client_name: str | None = Field(default=None, max_length=200)
    provider: str = Field(max_length=32)
    model: str | None = Field(default=None, max_length=200)
    endpoint: str = Field(max_length=300)
    capability: str | None = Field(default=None, max_length=32)
    status: int
    error_type: str | None = Field(default=None, max_length=64)
    latency_ms: float = 0.0
    upstream_latency_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_micros: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    streamed: bool = False


class OwnedObject(SQLModel, table=True):
    """An object stored at the provider (a response, a stored completion, a file, a batch, a
    cache) that a grant created through the proxy, or that an object it created named.

    A key is shared by every app its owner grants it to, and the provider keeps one store of
    objects per organisation: a grant may read, change or name by id only the objects in
    this table under its own id (``providers/base.py``, ``Collection``)."""

    __tablename__ = "owned_object"

    grant_id: str = Field(foreign_key="grant.id", primary_key=True, ondelete="CASCADE")
    provider: str = Field(primary_key=True, max_length=32)
    object_id: str = Field(primary_key=True, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
