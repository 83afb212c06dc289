"""What the proxy records of one request: the audit row and the settlement it needs.

Handlers fill an :class:`Outcome` as a request goes (no I/O); the recorder writes it
(``recorder.py``, ``settlement.py``), and the journal keeps it until then (``journal.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from okap_server.clock import new_id, utcnow
from okap_server.proxy.providers.base import Usage


def unknown_outcome_log_id(reservation_id: str) -> str:
    """The audit row of an admitted request: the one its settlement writes, or the one the
    sweeper writes for it if its hold went stale first (a late settlement replaces it)."""
    return "log_" + reservation_id.removeprefix("rsv_")


@dataclass
class Outcome:
    """One proxied request, as the audit and the spend counters need it. No content."""

    account_id: str
    grant_id: str
    client_name: str
    provider: str
    endpoint: str
    status: int
    model: str | None = None
    capability: str | None = None
    error_type: str | None = None
    latency_ms: float = 0.0
    upstream_latency_ms: float | None = None
    usage: Usage | None = None
    cost_micros: int = 0
    streamed: bool = False
    created_at: datetime = field(default_factory=utcnow)
    # Settlement: whether this request was admitted (counts as a request and a spend),
    # and the hold to release.
    admitted: bool = False
    reservation_id: str | None = None
    reserved_micros: int = 0
    reserved_periods: tuple[str, ...] = ()
    # What to bill if the request ends with no answer seen (its worst case).
    unknown_outcome_cost: int = 0
    # Never forwarded, admission interrupted: only release the hold (no request, no spend).
    abandoned: bool = False
    day: str = ""
    month: str = ""
    # Stored objects the answer named, which the grant owns from now on (``ownership.py``).
    owned: tuple[str, ...] = ()

    # The audit row's id, fixed once: derived from the admission, or new for a refusal.
    audit_id: str = ""

    def log_id(self) -> str:
        if not self.audit_id:
            rid = self.reservation_id
            self.audit_id = unknown_outcome_log_id(rid) if rid else new_id("log_")
        return self.audit_id

    def log_row(self) -> dict[str, Any]:
        """The ``request_log`` row, as the plain dict a bulk insert takes (building a
        SQLModel object per request cost 18x more on the hot path: bench/components.py)."""
        usage = self.usage or Usage()
        upstream = self.upstream_latency_ms
        return {
            "id": self.log_id(),
            "created_at": self.created_at,
            "account_id": self.account_id,
            "grant_id": self.grant_id,
            "client_name": self.client_name[:200],
            "provider": self.provider,
            "model": self.model[:200] if self.model else None,
            "endpoint": self.endpoint[:300],
            "capability": self.capability,
            "status": self.status,
            "error_type": self.error_type,
            "latency_ms": round(self.latency_ms, 3),
            "upstream_latency_ms": round(upstream, 3) if upstream is not None else None,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_tokens": usage.cached_tokens,
            "cost_micros": self.cost_micros,
            "streamed": self.streamed,
        }
