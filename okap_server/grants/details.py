"""A grant's ``authorization_details`` entries as stored (RFC 9396 §2), typed.

The authorization core parses and validates what an app asked for
(``authorization/details.py``); what it stores in ``Grant.details`` has the shape below,
which the proxy, usage and the dashboard read. Stored as JSON, so the entries stay plain
mappings: a ``TypedDict`` names the fields without changing what is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict, cast

# The largest spend limit a grant can carry; the ceilings above a grant share it.
MAX_SPEND_USD = 1_000_000.0


class GrantLimits(TypedDict, total=False):
    """An entry's limits; an absent or null name is no limit of that kind. Spend in USD.
    A grant stored with no limits object at all gets the vault's defaults (``settings``)."""

    monthly_spend: float | None
    weekly_spend: float | None
    daily_spend: float | None
    total_spend: float | None
    requests_per_minute: int | None
    requests_per_day: int | None
    tokens_per_request: int | None


class GrantDetail(TypedDict, total=False):
    """One granted ``ai_model_access`` entry; ``key_id`` is never shown to the app."""

    type: str
    provider: str
    models: list[str]
    capabilities: list[str]
    limits: GrantLimits
    expires: str | None
    reason: str | None
    key_id: str


GrantDetails = list[GrantDetail]


def stored(entries: Iterable[Mapping[str, Any]]) -> GrantDetails:
    """Entries the authorization core validated (``parse_details``, narrowing, an edit of
    limits) as ``Grant.details`` holds them: the same JSON, now typed."""
    return cast(GrantDetails, [dict(entry) for entry in entries])
