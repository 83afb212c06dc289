"""The ``ai_model_access`` authorization details type: parse and validate (RFC 9396 §2, §5).

``parse_details`` turns what an app sent into the normalised list the vault stores and shows:
every entry has all of ``type, provider, models, capabilities, limits, expires, reason``.
Anything wrong raises ``InvalidAuthorizationDetails`` naming the field and the reason; the
caller has stored nothing by then.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from okap_server.authorization.display_text import hidden_problem
from okap_server.authorization.errors import InvalidAuthorizationDetails, InvalidRequest
from okap_server.catalog import ProviderCatalog
from okap_server.clock import isoformat_z
from okap_server.grants.capabilities import CAPABILITIES, COUNT_LIMITS, SPEND_LIMITS
from okap_server.grants.details import MAX_SPEND_USD
from okap_server.settings import Settings

DETAILS_TYPE = "ai_model_access"
MAX_DETAILS_BYTES = 16 * 1024
MAX_ENTRIES = 16
MAX_MODELS = 64
MAX_REASON = 500
MAX_COUNT = 100_000_000
DEFAULT_CAPABILITIES = ("chat",)
ENTRY_FIELDS = frozenset(
    {"type", "provider", "models", "capabilities", "limits", "expires", "reason"}
)
MODEL_PATTERN = re.compile(r"^[A-Za-z0-9._:/@+*?-]{1,128}$")


def _fail(field: str, reason: str) -> InvalidAuthorizationDetails:
    return InvalidAuthorizationDetails(f"{field}: {reason}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose names repeat is refused (I-JSON, RFC 7493 §2.3): parsers disagree
    on which value wins, and the person must see exactly what the vault enforces."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"duplicate key {key[:40]!r}")
        found[key] = value
    return found


def loads_strict(text: str | bytes, *, what: str = "authorization_details") -> Any:
    """JSON decoding that refuses NaN/Infinity and anything over ``MAX_DETAILS_BYTES``."""
    if len(text) > MAX_DETAILS_BYTES:
        raise _fail(what, f"the request is larger than {MAX_DETAILS_BYTES} bytes")
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise _fail(what, f"not valid JSON ({str(exc)[:80]})") from None


def loads_body(body: bytes) -> Any:
    """A JSON request body (the OKAP binding's, the reference SDK's). One that is not JSON is
    a malformed request, ``invalid_request`` (RFC 6749 §5.2), not a details problem: the
    details are only a member of it."""
    try:
        return loads_strict(body, what="body")
    except InvalidAuthorizationDetails as exc:
        raise InvalidRequest(exc.description) from None


@dataclass(frozen=True)
class RequestedDetails:
    """What a front door stores for a request: the normalised entries and, for each, whether
    the app named its expiry. ``parse_details`` fills an unnamed expiry with the vault's
    default, so the entries alone cannot tell; the consent page says which it is."""

    entries: list[dict[str, Any]]
    expiry_asked: list[bool]


def parse_requested(raw: Any, catalog: ProviderCatalog, settings: Settings) -> RequestedDetails:
    """``parse_details`` for a request an app makes, remembering which expiries it named."""
    entries = parse_details(raw, catalog, settings)
    return RequestedDetails(entries, [item.get("expires") is not None for item in raw])


def parse_details_json(text: str, catalog: ProviderCatalog, settings: Settings) -> RequestedDetails:
    """The form-encoded ``authorization_details`` parameter (a JSON string)."""
    return parse_requested(loads_strict(text), catalog, settings)


def parse_details(
    raw: Any, catalog: ProviderCatalog, settings: Settings, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Validate a decoded ``authorization_details`` array; return normalised entries."""
    now = now or datetime.now(UTC)
    if not isinstance(raw, list):
        raise _fail("authorization_details", "must be a JSON array of objects")
    if not raw:
        raise _fail("authorization_details", "must name at least one provider")
    if len(raw) > MAX_ENTRIES:
        raise _fail("authorization_details", f"more than {MAX_ENTRIES} entries")
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        entry = _parse_entry(f"authorization_details[{index}]", item, catalog, settings, now)
        if entry["provider"] in seen:
            raise _fail(
                f"authorization_details[{index}].provider",
                f"{entry['provider']!r} appears twice; use one entry per provider",
            )
        seen.add(entry["provider"])
        entries.append(entry)
    return entries


def _parse_entry(
    where: str, item: Any, catalog: ProviderCatalog, settings: Settings, now: datetime
) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _fail(where, "must be a JSON object")
    if item.get("type") != DETAILS_TYPE:
        raise _fail(
            f"{where}.type",
            f"unknown type {str(item.get('type'))[:40]!r}; this vault supports {DETAILS_TYPE!r}",
        )
    unknown = sorted(set(item) - ENTRY_FIELDS)
    if unknown:
        raise _fail(f"{where}.{unknown[0][:40]}", "unknown field")
    provider = item.get("provider")
    if not isinstance(provider, str):
        raise _fail(f"{where}.provider", "must be a string")
    canonical = catalog.canonical(provider)
    if canonical is None:
        raise _fail(f"{where}.provider", f"unknown provider {provider[:40]!r}")
    return {
        "type": DETAILS_TYPE,
        "provider": canonical,
        "models": _parse_models(f"{where}.models", item.get("models")),
        "capabilities": _parse_capabilities(f"{where}.capabilities", item.get("capabilities")),
        "limits": parse_limits(f"{where}.limits", item.get("limits")),
        "expires": _parse_expires(f"{where}.expires", item.get("expires"), settings, now),
        "reason": _parse_reason(f"{where}.reason", item.get("reason")),
    }


def _parse_models(where: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, "must be an array of model names or patterns")
    if len(value) > MAX_MODELS:
        raise _fail(where, f"more than {MAX_MODELS} models")
    models: list[str] = []
    for i, model in enumerate(value):
        if not isinstance(model, str):
            raise _fail(f"{where}[{i}]", "must be a string")
        if not MODEL_PATTERN.fullmatch(model):
            raise _fail(
                f"{where}[{i}]",
                "not a model name or pattern (1-128 of letters, digits, . _ : / @ + - "
                "and the wildcards * ?)",
            )
        if model not in models:
            models.append(model)
    return models


def _parse_capabilities(where: str, value: Any) -> list[str]:
    if value is None:
        return list(DEFAULT_CAPABILITIES)
    if not isinstance(value, list) or not value:
        raise _fail(where, "must be a non-empty array of capability names")
    caps: list[str] = []
    for i, cap in enumerate(value):
        if not isinstance(cap, str):
            raise _fail(f"{where}[{i}]", "must be a string")
        if cap not in CAPABILITIES:
            raise _fail(
                f"{where}[{i}]",
                f"unknown capability {cap[:40]!r}; known: {', '.join(CAPABILITIES)}",
            )
        if cap not in caps:
            caps.append(cap)
    return caps


def parse_limits(where: str, value: Any) -> dict[str, float | int | None]:
    """All seven limits as the app named them, null meaning "not named". The stored request
    keeps exactly that: the defaults fill the unnamed ones, field by field, when a person
    decides (``defaults.effective_limits``), so the consent page can tell a limit the app
    asked for (only lowered) from a default (changed or cleared)."""
    limits: dict[str, float | int | None] = {name: None for name in SPEND_LIMITS + COUNT_LIMITS}
    if value is None:
        return limits
    if not isinstance(value, dict):
        raise _fail(where, "must be a JSON object")
    for name, amount in value.items():
        if name not in limits:
            raise _fail(f"{where}.{str(name)[:40]}", "unknown limit")
        limits[name] = check_limit(f"{where}.{name}", name, amount)
    return limits


def check_limit(where: str, name: str, amount: Any) -> float | int | None:
    if amount is None:
        return None
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise _fail(where, "must be a number or null")
    if not math.isfinite(amount):
        raise _fail(where, "must be a finite number")
    if name in SPEND_LIMITS:
        if amount < 0:
            raise _fail(where, "must not be negative")
        if amount > MAX_SPEND_USD:
            raise _fail(where, f"more than {MAX_SPEND_USD:,.0f} USD")
        return round(float(amount), 6)
    if isinstance(amount, float) and not amount.is_integer():
        raise _fail(where, "must be a whole number")
    if amount < 1:
        raise _fail(where, "must be at least 1")
    if amount > MAX_COUNT:
        raise _fail(where, f"more than {MAX_COUNT:,}")
    return int(amount)


def parse_time(value: str) -> datetime | None:
    """RFC 3339 / ISO 8601 date or date-time; naive means UTC. None if unparseable."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_expires(where: str, value: Any, settings: Settings, now: datetime) -> str:
    if value is None:
        return isoformat_z(now + timedelta(days=settings.default_grant_days))
    if not isinstance(value, str) or len(value) > 40:
        raise _fail(where, "must be an RFC 3339 date-time string")
    parsed = parse_time(value)
    if parsed is None:
        raise _fail(where, "must be an RFC 3339 date-time, e.g. 2026-12-31T00:00:00Z")
    if parsed <= now:
        raise _fail(where, "is in the past")
    if parsed > now + timedelta(days=settings.max_grant_days):
        raise _fail(where, f"is more than {settings.max_grant_days} days away")
    return isoformat_z(parsed)


def _parse_reason(where: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(where, "must be a string")
    if len(value) > MAX_REASON:
        raise _fail(where, f"longer than {MAX_REASON} characters")
    problem = hidden_problem(value, allowed="\n")
    if problem:
        raise _fail(where, problem)
    return value.strip() or None
