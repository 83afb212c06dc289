"""What "narrower" means for ``ai_model_access`` (SPEC.md "Narrowing"); consent only narrows.

An entry B is narrower than or equal to an entry A of the same provider when:
- B's models are a subset of A's (A empty = all models, so any list is narrower);
  B may not be empty unless A is;
- B's capabilities are a non-empty subset of A's;
- every limit of B is at most A's; where A has a limit, B has one too (null = none = wider);
- B expires no later than A.
Dropping a whole entry is narrowing too; adding one is not.

A's limits are what the app named. The ones it did not name start from the default limits
(``defaults.effective_limits``); those are the vault's policy, not the app's ask, so the
person may raise, lower or clear them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from okap_server.authorization.defaults import effective_limits
from okap_server.authorization.details import MODEL_PATTERN, check_limit, parse_time
from okap_server.authorization.errors import InvalidAuthorizationDetails
from okap_server.clock import isoformat_z, utcnow
from okap_server.grants.capabilities import SPEND_LIMITS
from okap_server.settings import DefaultLimits


class NarrowingError(Exception):
    """The person's choice would widen the request or is malformed; safe to show."""


@dataclass
class Narrowing:
    """The person's choices for one entry. ``None`` fields keep what was asked.

    ``limits`` holds only the limits the person set: a number, or None to clear it (no
    limit of that kind). A limit not in it keeps its starting value (asked, else default).
    """

    include: bool = True
    models: list[str] | None = None
    capabilities: list[str] | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    expires: datetime | None = None
    key_id: str | None = None


def _limit_text(name: str, value: Any) -> str:
    """``monthly spend $10.00``, ``requests per day 1,000``: a limit as the page writes it."""
    if name in SPEND_LIMITS:  # cents, unless that would round the amount (0.005 stays)
        money = float(value)
        amount = f"${money:,.2f}" if round(money, 2) == money else f"${money}"
    else:
        amount = f"{value:,}"
    return f"{name.replace('_', ' ')} {amount}"


def narrow_entry(
    requested: dict[str, Any], choice: Narrowing, defaults: DefaultLimits
) -> dict[str, Any]:
    """The granted entry for one requested entry; raises NarrowingError if it would widen."""
    provider = requested["provider"]
    granted = dict(requested)
    if choice.models is not None:
        models = [m.strip() for m in choice.models if m.strip()]
        bad = [m for m in models if not MODEL_PATTERN.fullmatch(m)]
        if bad:
            raise NarrowingError(f"{provider}: {bad[0][:60]!r} is not a model name")
        if requested["models"]:
            extra = [m for m in models if m not in requested["models"]]
            if extra:
                raise NarrowingError(f"{provider}: {extra[0]!r} was not asked for")
            if not models:
                raise NarrowingError(
                    f"{provider}: keep at least one model, or leave the provider out"
                )
        granted["models"] = list(dict.fromkeys(models))
    if choice.capabilities is not None:
        caps = list(dict.fromkeys(choice.capabilities))
        extra = [c for c in caps if c not in requested["capabilities"]]
        if extra:
            raise NarrowingError(f"{provider}: capability {extra[0][:40]!r} was not asked for")
        if not caps:
            raise NarrowingError(
                f"{provider}: keep at least one capability, or leave the provider out"
            )
        granted["capabilities"] = caps
    limits = effective_limits(requested["limits"], defaults)
    for name, value in choice.limits.items():
        if name not in limits:
            raise NarrowingError(f"{provider}: unknown limit {str(name)[:40]!r}")
        asked = requested["limits"].get(name)
        if value is None:
            if asked is not None:
                raise NarrowingError(
                    f"{provider}: the app asked for {_limit_text(name, asked)}; "
                    "you may lower it but not remove it"
                )
            limits[name] = None  # a default the person cleared
            continue
        try:
            amount = check_limit(name, name, value)
        except InvalidAuthorizationDetails as exc:
            raise NarrowingError(f"{provider}: {exc.description}") from None
        if asked is not None and amount is not None and amount > asked:
            raise NarrowingError(
                f"{provider}: {_limit_text(name, amount)} is more than the app asked for; "
                f"it may only be lowered (asked: {_limit_text(name, asked)})"
            )
        limits[name] = amount
    granted["limits"] = limits
    if choice.expires is not None:
        asked_expiry = parse_time(requested["expires"])
        if asked_expiry is not None and choice.expires > asked_expiry:
            raise NarrowingError(f"{provider}: the expiry may only be made earlier")
        if choice.expires <= utcnow():
            raise NarrowingError(f"{provider}: the expiry is in the past")
        granted["expires"] = isoformat_z(choice.expires)
    return granted


def is_narrower(granted: dict[str, Any], requested: dict[str, Any]) -> bool:
    """True when ``granted`` asks for no more than ``requested`` (used as a final check)."""
    if granted["provider"] != requested["provider"]:
        return False
    if requested["models"] and not (
        granted["models"] and set(granted["models"]) <= set(requested["models"])
    ):
        return False
    if not granted["capabilities"] or not set(granted["capabilities"]) <= set(
        requested["capabilities"]
    ):
        return False
    for name, asked in requested["limits"].items():
        given = granted["limits"].get(name)
        if asked is not None and (given is None or given > asked):
            return False
    g_exp, r_exp = parse_time(granted["expires"]), parse_time(requested["expires"])
    return g_exp is not None and r_exp is not None and g_exp <= r_exp


def narrow(
    requested: list[dict[str, Any]], choices: dict[str, Narrowing], defaults: DefaultLimits
) -> list[dict[str, Any]]:
    """Apply the person's choices (keyed by provider) to every entry; at least one stays.
    Limits the app did not name start from ``defaults`` (the deciding account's)."""
    granted = []
    for entry in requested:
        choice = choices.get(entry["provider"], Narrowing())
        if not choice.include:
            continue
        result = narrow_entry(entry, choice, defaults)
        if not is_narrower(result, entry):
            raise NarrowingError(f"{entry['provider']}: that would widen the request")
        granted.append(result)
    if not granted:
        raise NarrowingError("leave at least one provider in, or choose Deny")
    return granted
