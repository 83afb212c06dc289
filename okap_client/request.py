"""What an app asks for: ``ai_model_access`` authorization details (RFC 9396).

``build_details`` turns the friendly keywords of ``request_access`` (including the reference
SDK's ``monthly_limit``, ``daily_limit`` and ``requests_per_minute``) into the list of
authorization_details entries sent to the vault. ``covers`` decides whether a granted list
answers a request, which is what the token cache needs.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from okap_client.errors import InvalidRequest

DETAILS_TYPE = "ai_model_access"
LIMIT_NAMES = (
    "monthly_spend",
    "daily_spend",
    "total_spend",
    "requests_per_minute",
    "requests_per_day",
    "tokens_per_request",
)
DEFAULT_CAPABILITIES = ("chat",)
# Provider aliases the vault resolves; the client needs them only to match cached grants.
PROVIDER_ALIASES: Mapping[str, str] = MappingProxyType({"gemini": "google"})

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def canonical_provider(provider: str) -> str:
    name = provider.strip().lower()
    return PROVIDER_ALIASES.get(name, name)


def normalize_expires(expires: str | datetime | timedelta | None, now: datetime) -> str | None:
    """An ISO 8601 UTC instant from a datetime, a timedelta, ``"30d"``-style text or ISO text."""
    if expires is None:
        return None
    if isinstance(expires, timedelta):
        expires = now + expires
    if isinstance(expires, str):
        match = _DURATION.match(expires.strip().lower())
        if match:
            delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
            expires = now + delta
        else:
            try:
                expires = datetime.fromisoformat(expires.strip().replace("Z", "+00:00"))
            except ValueError:
                raise InvalidRequest(
                    f"expires must be an ISO 8601 date or a duration like 30d, not {expires!r}"
                ) from None
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_limits(
    limits: Mapping[str, float | int | None] | None,
    *,
    monthly_limit: float | None = None,
    daily_limit: float | None = None,
    requests_per_minute: int | None = None,
) -> dict[str, float | int]:
    merged: dict[str, float | int | None] = dict(limits or {})
    for name, value in (
        ("monthly_spend", monthly_limit),
        ("daily_spend", daily_limit),
        ("requests_per_minute", requests_per_minute),
    ):
        if value is not None:
            merged[name] = value
    result: dict[str, float | int] = {}
    for name, value in merged.items():
        if name not in LIMIT_NAMES:
            known = ", ".join(LIMIT_NAMES)
            raise InvalidRequest(f"unknown limit {name!r}; known limits: {known}")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidRequest(f"limit {name} must be a non-negative number")
        result[name] = value
    return result


def build_entry(
    provider: str,
    *,
    models: Iterable[str] | None = None,
    capabilities: Iterable[str] | None = None,
    limits: Mapping[str, float | int] | None = None,
    expires: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    if not provider or not provider.strip():
        raise InvalidRequest("provider is required")
    entry: dict[str, Any] = {
        "type": DETAILS_TYPE,
        "provider": provider.strip().lower(),
        "models": [str(m) for m in (models or [])],
        "capabilities": [str(c) for c in (capabilities or DEFAULT_CAPABILITIES)],
    }
    if limits:
        entry["limits"] = dict(limits)
    if expires:
        entry["expires"] = expires
    if reason:
        entry["reason"] = reason
    return entry


def normalize_details(
    details: Sequence[Mapping[str, Any]],
    now: datetime,
    reason: str | None,
    expires: str | datetime | timedelta | None = None,
) -> list[dict[str, Any]]:
    """Check and complete caller-supplied authorization_details entries. ``reason`` and
    ``expires`` given beside them apply to every entry that names none of its own."""
    if not details:
        raise InvalidRequest("authorization_details must name at least one provider")
    result = []
    for raw in details:
        if not isinstance(raw, Mapping):
            raise InvalidRequest("each authorization_details entry must be an object")
        kind = raw.get("type", DETAILS_TYPE)
        if kind != DETAILS_TYPE:
            raise InvalidRequest(f"unsupported authorization_details type {kind!r}")
        entry = build_entry(
            str(raw.get("provider") or ""),
            models=raw.get("models"),
            capabilities=raw.get("capabilities"),
            limits=build_limits(raw.get("limits")),
            expires=normalize_expires(raw.get("expires") or expires, now),
            reason=raw.get("reason") or reason,
        )
        result.append(entry)
    return result


def scope_of(details: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The part of a request that decides what access means, canonical for hashing."""
    scope = []
    for entry in details:
        scope.append(
            {
                "provider": canonical_provider(str(entry.get("provider", ""))),
                "models": sorted(entry.get("models") or []),
                "capabilities": sorted(entry.get("capabilities") or []),
                "limits": dict(sorted((entry.get("limits") or {}).items())),
            }
        )
    return sorted(scope, key=lambda e: str(e["provider"]))


def _models_cover(granted: Sequence[str], requested: Sequence[str]) -> bool:
    if not granted:
        return True  # all models
    if not requested:
        return False
    return all(any(fnmatch.fnmatchcase(m, g) or m == g for g in granted) for m in requested)


def _limits_cover(granted: Mapping[str, Any], requested: Mapping[str, Any]) -> bool:
    for name, wanted in requested.items():
        have = granted.get(name)
        if have is not None and (wanted is None or have < wanted):
            return False
    return True


def covers(granted: Sequence[Mapping[str, Any]], requested: Sequence[Mapping[str, Any]]) -> bool:
    """True if a granted authorization_details list allows everything requested."""
    by_provider = {canonical_provider(str(g.get("provider", ""))): g for g in granted}
    for want in requested:
        have = by_provider.get(canonical_provider(str(want.get("provider", ""))))
        if have is None:
            return False
        if not _models_cover(have.get("models") or [], want.get("models") or []):
            return False
        if not set(want.get("capabilities") or []) <= set(have.get("capabilities") or []):
            return False
        if not _limits_cover(have.get("limits") or {}, want.get("limits") or {}):
            return False
    return True
