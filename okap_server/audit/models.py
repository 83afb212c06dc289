"""Security events: sign-ins, grants, denials, revocations, key changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from okap_server.clock import new_id, utcnow


class SecurityEvent(SQLModel, table=True):
    """One entry of the security audit trail. ``detail`` never holds a secret."""

    __tablename__ = "security_event"

    id: str = Field(default_factory=lambda: new_id("evt_"), primary_key=True, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    account_id: str | None = Field(default=None, index=True, max_length=40)
    kind: str = Field(max_length=48, index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    ip: str | None = Field(default=None, max_length=64)
