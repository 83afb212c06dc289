"""A grant: what a person granted an app, and the hash of its one token."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from okap_server.clock import new_id, utcnow
from okap_server.grants.details import GrantDetails

if TYPE_CHECKING:
    _StoredDetails = GrantDetails
else:
    # At run time the column stays plain JSON: pydantic would otherwise re-validate the
    # entries on ``model_validate`` (a backup's restore), dropping or coercing what the
    # authorization core stored. The type checker sees the typed entries.
    _StoredDetails = list[dict[str, Any]]


class Grant(SQLModel, table=True):
    """What a person granted an app, and the hash of the one token that carries it.

    ``details`` is the granted ``authorization_details`` list; each entry carries the id of
    the provider key that backs it (``key_id``), which is never shown to the app.
    """

    __tablename__ = "grant"

    id: str = Field(default_factory=lambda: new_id("grt_"), primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="account.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True, index=True)
    client_id: str = Field(max_length=512)
    client_name: str = Field(max_length=200)
    client_url: str | None = Field(default=None, max_length=512)
    redirect_host: str | None = Field(default=None, max_length=255)
    flow: str = Field(max_length=16)
    details: _StoredDetails = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    # Bumped on every change (revocation, edited limits) so replicas can refresh caches.
    version: int = 1
    # Delegation (RFC 8693 token exchange): a child grant names its parent, the chain of
    # its ancestors (root first, so the proxy loads them in one query and locks their
    # counters in one order), and the ``act`` claim of its delegators (§4.1, the most
    # recent outermost). A grant made by a person's consent has none of them.
    parent_grant_id: str | None = Field(
        default=None, foreign_key="grant.id", index=True, ondelete="CASCADE", max_length=40
    )
    # SQL NULL (not JSON null) when absent, so "delegated grants" is an indexable filter.
    ancestry: list[str] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    act: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    # The person may forbid delegating this grant (consent page); a child inherits it.
    delegation_allowed: bool = True

    @property
    def depth(self) -> int:
        """0 for a grant a person approved, 1 for its child, and so on."""
        return len(self.ancestry or ())
