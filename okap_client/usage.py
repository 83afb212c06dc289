"""What a token has used and has left, as ``GET /okap/usage`` reports it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Usage:
    """Spend (USD) and request counts per provider; a ``None`` limit means none."""

    active: bool
    expires_at: str | None
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorization_details: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Usage:
        usage = body.get("usage")
        return cls(
            active=bool(body.get("active", True)),
            expires_at=body.get("expires_at"),
            providers=dict(usage) if isinstance(usage, Mapping) else {},
            authorization_details=list(body.get("authorization_details") or []),
        )

    def window(self, provider: str, kind: str, period: str) -> dict[str, Any]:
        """One window, e.g. ``window("openai", "spend", "month")`` → used/limit/remaining."""
        entry = self.providers.get(provider, {}).get(kind, {}).get(period)
        return dict(entry) if isinstance(entry, Mapping) else {}

    def remaining(self, provider: str, kind: str, period: str) -> float | None:
        value = self.window(provider, kind, period).get("remaining")
        return None if value is None else float(value)
