"""Rate windows: requests per minute and per day, counted with one conditional upsert so
the limit holds across processes (a window is counted only while under its limit)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from okap_server.db.cursor import Cursor
from okap_server.grants.periods import windows_of
from okap_server.grants.view import Limits
from okap_server.proxy.accounting.statements import UNCOUNT, rate_statement
from okap_server.proxy.errors import RateLimited


@dataclass(frozen=True)
class RateState:
    """For ``X-RateLimit-*``: the tightest window after this request."""

    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(max(self.remaining, 0)),
            "x-ratelimit-reset": str(self.reset_seconds),
        }


@dataclass(frozen=True)
class Counted:
    """What one admission counted: ``requests`` in each of ``windows``, and the tightest
    window after the last of them, for the headers."""

    windows: tuple[str, ...] = ()
    tightest: RateState | None = None
    requests: int = 1
    after_last: tuple[RateState, ...] = ()

    def state_of(self, nth: int) -> RateState | None:
        """The tightest window as it stood after the ``nth`` (from 0) of the requests."""
        later = self.requests - 1 - nth
        states = [replace(s, remaining=s.remaining + later) for s in self.after_last]
        return min(states, key=lambda s: s.remaining) if states else None


class RateLimiter(Protocol):
    """Counts one request in each of a grant entry's windows, or refuses (RateLimited) with
    nothing counted; ``uncount`` takes a counted request back out."""

    def hit(
        self,
        cursor: Cursor,
        grant_id: str,
        provider: str,
        limits: Limits,
        now: datetime,
        requests: int = 1,
    ) -> Counted: ...

    def uncount(self, cursor: Cursor, grant_id: str, provider: str, counted: Counted) -> None: ...


class SqlRateLimiter:
    """Fixed windows in ``rate_counter``, one conditional upsert per window."""

    def hit(
        self,
        cursor: Cursor,
        grant_id: str,
        provider: str,
        limits: Limits,
        now: datetime,
        requests: int = 1,
    ) -> Counted:
        """Count ``requests`` in every window, all or none (RateLimited if any window lacks
        room for all of them)."""
        windows: list[tuple[str, int, datetime]] = []
        minute, minute_end, day, day_end = windows_of(int(now.timestamp() // 60))
        if limits.requests_per_minute is not None:
            windows.append((minute, limits.requests_per_minute, minute_end))
        if limits.requests_per_day is not None:
            windows.append((day, limits.requests_per_day, day_end))
        if not windows:
            return Counted(requests=requests)
        # One statement for every window: a row is counted only while under its limit.
        params: dict[str, Any] = {"g": grant_id, "p": provider, "k": requests}
        for i, (window, limit, end) in enumerate(windows):
            params.update({f"w{i}": window, f"l{i}": limit, f"e{i}": cursor.timestamp(end)})
        rows = cursor.rows(rate_statement(len(windows)), params)
        counted = {str(w): int(c) for w, c in rows}

        def reset_of(end: datetime) -> int:
            return max(int((end - now).total_seconds() + 0.999), 1)

        # A window's first row is inserted unchecked, so its count is compared here too.
        full = [(w, limit, end) for w, limit, end in windows if counted.get(w, limit + 1) > limit]
        if full:
            # Other windows may have counted these requests: take that back, so a refusal
            # counts nothing (admissions share one transaction, see admission.py).
            self.uncount(cursor, grant_id, provider, Counted(tuple(counted), None, requests))
            window, limit, end = full[0]
            kind = "minute" if window.startswith("minute") else "day"
            raise RateLimited(
                f"Rate limit reached: {limit} requests per {kind} for this grant.",
                headers={
                    "retry-after": str(reset_of(end)),
                    **RateState(limit, 0, reset_of(end)).headers(),
                },
            )
        states = tuple(
            RateState(limit, limit - counted[w], reset_of(end)) for w, limit, end in windows
        )
        return Counted(tuple(counted), min(states, key=lambda s: s.remaining), requests, states)

    def uncount(self, cursor: Cursor, grant_id: str, provider: str, counted: Counted) -> None:
        cursor.run_many(
            UNCOUNT,
            [
                {"g": grant_id, "p": provider, "w": w, "k": counted.requests}
                for w in counted.windows
            ],
        )
