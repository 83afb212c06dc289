"""Accounts (people or team members) and their dashboard sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from okap_server.clock import new_id, utcnow


class Account(SQLModel, table=True):
    """A person who owns keys and grants. The first account is the owner and an admin."""

    __tablename__ = "account"

    id: str = Field(default_factory=lambda: new_id("acc_"), primary_key=True, max_length=40)
    username: str = Field(index=True, unique=True, max_length=64)
    password_hash: str = Field(max_length=255)
    is_admin: bool = False
    disabled: bool = False
    # Per-account preferences: default limits, auto-open consent page.
    preferences: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    # Spend ceilings over every grant of the account, micro-dollars; None: no ceiling. Typed
    # columns, not preferences, because the proxy reads them with the grant on every load.
    daily_ceiling_micros: int | None = Field(default=None, sa_column=Column(BigInteger))
    weekly_ceiling_micros: int | None = Field(default=None, sa_column=Column(BigInteger))
    monthly_ceiling_micros: int | None = Field(default=None, sa_column=Column(BigInteger))


class WebSession(SQLModel, table=True):
    """A signed-in browser. Only the SHA-256 of the cookie value is stored."""

    __tablename__ = "web_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(foreign_key="account.id", index=True, ondelete="CASCADE")
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    ip: str | None = Field(default=None, max_length=64)


class ManagementToken(SQLModel, table=True):
    """An ``okapm_`` token for the /api/v1 management API, acting as its account only.

    Only the SHA-256 of the token is stored (``token_hash``); ``scopes`` is the list of
    scope names it carries (least privilege: see ``manage/management_tokens.py``).
    """

    __tablename__ = "management_token"

    id: str = Field(default_factory=lambda: new_id("mgt_"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
