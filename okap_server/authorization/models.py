"""Authorization requests awaiting a person, and one-time codes (grants: ``grants/models.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from okap_server.clock import new_id, utcnow


class AuthorizationRequest(SQLModel, table=True):
    """One request for access, from any front door, until a person decides it.

    ``flow`` is ``code`` (OAuth authorization code, possibly pushed via PAR), ``device``
    (RFC 8628), ``okap`` (OKAP v1.0 binding) or ``reference`` (the reference SDK's endpoint).
    ``status`` is ``pending``, ``approved``, ``denied`` or ``expired``; it changes once,
    except that an approval whose token was not collected yet can still lapse (``expired``,
    after ``expires_at``, which approval moves to the end of the collection window) or be
    withdrawn (``denied``, when the approving account is disabled).
    ``decided_by`` is the account that claimed the request while still pending (see
    ``requests.claim``); only that account may then decide it.
    """

    __tablename__ = "authorization_request"

    id: str = Field(default_factory=lambda: new_id("req_"), primary_key=True, max_length=40)
    flow: str = Field(max_length=16)
    status: str = Field(default="pending", max_length=16, index=True)
    client_id: str = Field(max_length=512)
    client_name: str = Field(max_length=200)
    client_url: str | None = Field(default=None, max_length=512)
    redirect_uri: str | None = Field(default=None, max_length=2048)
    state: str | None = Field(default=None, max_length=1024)
    code_challenge: str | None = Field(default=None, max_length=128)
    code_challenge_method: str | None = Field(default=None, max_length=8)
    requested_details: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    granted_details: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    # Per requested entry: did the app name its expiry? (False: the vault's default fills
    # it.) None on requests stored before migration 0007: read as "not asked".
    expiry_asked: list[bool] | None = Field(default=None, sa_column=Column(JSON))
    # PAR (RFC 9126): hash of the request_uri's random part; single use.
    request_uri_hash: str | None = Field(default=None, max_length=64, index=True, unique=True)
    request_uri_used: bool = False
    # Device grant (RFC 8628).
    device_code_hash: str | None = Field(default=None, max_length=64, index=True, unique=True)
    user_code: str | None = Field(default=None, max_length=16, index=True, unique=True)
    poll_interval: int = 5
    last_polled_at: datetime | None = None
    # OKAP binding: hash of the poll handle given to an app whose wait timed out.
    poll_handle_hash: str | None = Field(default=None, max_length=64, index=True, unique=True)
    token_delivered: bool = False
    # Whether the grant may be delegated (RFC 8693 token exchange); the app may ask for
    # no delegation, and the person decides on the consent page.
    delegation_allowed: bool = True
    decided_by: str | None = Field(default=None, foreign_key="account.id", ondelete="SET NULL")
    deny_reason: str | None = Field(default=None, max_length=500)
    grant_id: str | None = Field(default=None, max_length=40)
    # Where the request came from (an IP address, or an IPv6 /64): the flood caps count per
    # source, and the pending list shows every source's newest first.
    source: str | None = Field(default=None, max_length=64, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    decided_at: datetime | None = None


class AuthorizationCode(SQLModel, table=True):
    """An authorization code (RFC 6749 §4.1.2): single use, at most 60 s, bound to its request."""

    __tablename__ = "authorization_code"

    code_hash: str = Field(primary_key=True, max_length=64)
    request_id: str = Field(foreign_key="authorization_request.id", ondelete="CASCADE")
    client_id: str = Field(max_length=512)
    redirect_uri: str = Field(max_length=2048)
    code_challenge: str = Field(max_length=128)
    expires_at: datetime
    used_at: datetime | None = None
    grant_id: str | None = Field(default=None, max_length=40)
