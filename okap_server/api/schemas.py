"""Request bodies of /api/v1. Every model forbids unknown fields (422 naming the field),
and bounds every string, so a body is checked before any use case runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsPatch(Strict):
    """Only the limits named change; a number lowers (or sets) one, null clears one."""

    monthly_spend: float | None = Field(default=None, ge=0, le=1_000_000)
    daily_spend: float | None = Field(default=None, ge=0, le=1_000_000)
    total_spend: float | None = Field(default=None, ge=0, le=1_000_000)
    requests_per_minute: int | None = Field(default=None, ge=1, le=100_000_000)
    requests_per_day: int | None = Field(default=None, ge=1, le=100_000_000)
    tokens_per_request: int | None = Field(default=None, ge=1, le=100_000_000)


class EntryPatch(Strict):
    models: list[str] | None = Field(default=None, max_length=64)
    limits: LimitsPatch | None = None
    expires: datetime | None = None


class GrantPatch(Strict):
    """Keyed by provider: what to narrow in that entry of the grant."""

    providers: dict[str, EntryPatch] = Field(max_length=16)


class KeyCreate(Strict):
    provider: str = Field(min_length=1, max_length=32)
    label: str = Field(min_length=1, max_length=64)
    secret: str = Field(min_length=1, max_length=4096)
    default: bool = False


class KeyPatch(Strict):
    label: str | None = Field(default=None, min_length=1, max_length=64)
    default: bool | None = None
    secret: str | None = Field(default=None, min_length=1, max_length=4096)


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    authorization_details: list[dict[str, Any]] = Field(min_length=1, max_length=16)


class AccountCreate(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    admin: bool = False


class AccountPatch(Strict):
    disabled: bool


class WebhookCreate(Strict):
    # Longer URLs are refused by the SSRF guard with its own reason (webhooks/url_guard.py).
    url: str = Field(min_length=1, max_length=8192)
    events: list[str] | None = Field(default=None, max_length=32)
    description: str = Field(default="", max_length=1000)
