"""Encrypted provider keys and vault-wide metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, LargeBinary, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from okap_server.clock import new_id, utcnow


class ProviderKey(SQLModel, table=True):
    """A real provider API key, AES-256-GCM encrypted.

    The associated data binds the ciphertext to (id, account_id, provider), so a ciphertext
    copied onto another row does not decrypt. ``master_key_id`` names the master key used,
    so the master key can rotate.
    """

    __tablename__ = "provider_key"
    __table_args__ = (UniqueConstraint("account_id", "provider", "label"),)

    id: str = Field(default_factory=lambda: new_id("key_"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, ondelete="CASCADE")
    provider: str = Field(max_length=32, index=True)
    label: str = Field(max_length=64)
    master_key_id: str = Field(max_length=32)
    nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    hint: str = Field(max_length=32)
    is_default: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    # What every grant backed by this key may spend together in a UTC month, micro-dollars;
    # None: no ceiling.
    monthly_ceiling_micros: int | None = Field(default=None, sa_column=Column(BigInteger))


class VaultMeta(SQLModel, table=True):
    """Small vault-wide facts: the master key check value, the pending setup token's hash."""

    __tablename__ = "vault_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=2048)
    updated_at: datetime = Field(default_factory=utcnow)
