"""Webhook endpoints, the outbox of events, and one delivery row per (event, endpoint).

The outbox is written in the transaction of the change that caused the event
(``events.emit``), so a crash between that commit and the delivery loses nothing: the
worker (``worker.py``) finds the rows when the vault starts again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, LargeBinary
from sqlmodel import Field, SQLModel

from okap_server.clock import new_id, utcnow


class WebhookEndpoint(SQLModel, table=True):
    """Where one account's events go. The signing secret is sealed with the master key
    (bound to the row's id and account, as a provider key is) and shown once, at creation."""

    __tablename__ = "webhook_endpoint"

    id: str = Field(default_factory=lambda: new_id("wh_"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, ondelete="CASCADE")
    url: str = Field(max_length=2048)
    description: str = Field(default="", max_length=200)
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    master_key_id: str = Field(max_length=32)
    nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    # Set when deliveries kept failing for the whole retry schedule; the dashboard says so.
    disabled_at: datetime | None = None
    disabled_reason: str | None = Field(default=None, max_length=300)


class WebhookEvent(SQLModel, table=True):
    """One event, as it will be delivered (``payload`` is the JSON body, no secret in it).

    ``dedupe_key`` makes an event that must happen once (a threshold crossing in a period,
    a grant's expiry notice) insert at most once, however many writers try."""

    __tablename__ = "webhook_event"

    id: str = Field(default_factory=lambda: new_id("msg_"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=48)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dedupe_key: str | None = Field(default=None, max_length=300, unique=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class WebhookDelivery(SQLModel, table=True):
    """One event to one endpoint. ``seq`` orders them: an endpoint gets its events one at a
    time in the order they were written, so a receiver sees each grant's events in order.
    A worker claims a row with a lease (``lease_until``); see ``outbox.claim``."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_endpoint", "endpoint_id", "status", "seq"),
    )

    seq: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    event_id: str = Field(foreign_key="webhook_event.id", index=True, ondelete="CASCADE")
    endpoint_id: str = Field(foreign_key="webhook_endpoint.id", ondelete="CASCADE")
    # pending, delivered, failed (retries exhausted, or the endpoint was disabled)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_owner: str | None = Field(default=None, max_length=40)
    lease_until: datetime | None = None
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=300)
    delivered_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
