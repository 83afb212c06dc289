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
    # The provider key that backed it: its spend counts against the key's ceiling.
    key_id: str | None = None
    # Stored objects the answer named, which the grant owns from now on (``ownership.py``).
    owned: tuple[str, ...] = ()
    # A delegated grant's ancestors, root first: its spend counts as theirs too.
    ancestors: tuple[str, ...] = ()

    # The audit row's id, fixed once: derived from the admission, or new for a refusal.
    audit_id: str = ""

    # How a request ends when no answer decides its cost. The rule they share lives here
    # once: an admitted request may have reached the provider, so it is never billed $0
    # unless it was never forwarded.

    @classmethod
    def abandoned_hold(
        cls,
        grant_id: str,
        provider: str,
        reservation_id: str,
        amount: int,
        periods: tuple[str, ...],
        account_id: str = "",
        key_id: str | None = None,
        ancestors: tuple[str, ...] = (),
    ) -> Outcome:
        """A hold admitted for a request that stopped waiting before it was forwarded:
        settlement only releases it (no request, no spend, no audit row). The account and
        key place its ceilings' rows in the lock order (``accounting/deltas.py``)."""
        outcome = cls(account_id, grant_id, "", provider, "", 0, key_id=key_id)
        outcome.ancestors = ancestors
        outcome.interrupted(reservation_id, amount, periods)
        return outcome

    def interrupted(self, reservation_id: str, amount: int, periods: tuple[str, ...]) -> None:
        """Never forwarded, and its hold may or may not be stored: release it once the
        database answers again, never charge it."""
        self.admitted, self.abandoned = True, True
        self.reservation_id, self.reserved_micros = reservation_id, amount
        self.reserved_periods = periods

    def refused(self, status: int, code: str, latency_ms: float) -> None:
        """Refused by the vault or the provider; an error type set earlier (what made an
        upstream failure) wins over the refusal's code."""
        self.status = status
        self.error_type = self.error_type or code
        self.latency_ms = latency_ms

    def unknown_cost(self, seen: int = 0) -> int:
        """What an admitted request whose answer was not seen whole is billed: never below
        the usage seen, its hold, or its worst case."""
        return max(seen, self.reserved_micros, self.unknown_outcome_cost)

    def crashed(self) -> None:
        """The vault failed mid-request (its own fault)."""
        self.status, self.error_type = 500, "internal_error"
        if self.admitted:
            self.cost_micros = self.unknown_cost()

    def cancelled(self) -> bool:
        """Cancelled mid-request (server shutdown). True if it must still be settled: only
        an admitted request holds anything or may have been billed."""
        if not self.admitted:
            return False
        self.status, self.error_type = 499, "cancelled"
        self.cost_micros = self.unknown_cost()
        return True

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
