"""Default limits: what fills each limit an app did not name.

A request stores only the limits the app named (``parse_limits``: null = not named). When
a person decides, every limit left unnamed is filled, field by field, from the deciding
account's default limits (Account.preferences), else the vault's
(``Settings.default_limits``). So an app that names only ``requests_per_minute`` still gets
the default spend limits: naming one limit never drops the others. On the consent page the
person may change a filled-in limit or clear it (no limit of that kind); a limit the app
named may only be lowered (SPEC.md "Narrowing").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from okap_server.accounts.models import Account
from okap_server.grants.capabilities import LIMIT_NAMES
from okap_server.settings import DefaultLimits, Settings

DEFAULT_LIMITS_KEY = "default_limits"


def default_limits_for(
    session: Session, account_id: str | None, settings: Settings
) -> DefaultLimits:
    """This account's default limits, or the vault's when it set none."""
    account = session.get(Account, account_id) if account_id else None
    stored = (account.preferences or {}).get(DEFAULT_LIMITS_KEY) if account else None
    if isinstance(stored, dict):
        try:
            return DefaultLimits.model_validate(stored)
        except ValidationError:
            pass
    return settings.default_limits


def effective_limits(
    asked: Mapping[str, Any], defaults: DefaultLimits
) -> dict[str, float | int | None]:
    """Every limit: the one the app named, else the default (which may be none)."""
    filled = defaults.model_dump()
    return {
        name: asked[name] if asked.get(name) is not None else filled.get(name)
        for name in LIMIT_NAMES
    }


def with_defaults(
    details: Sequence[Mapping[str, Any]], defaults: DefaultLimits
) -> list[dict[str, Any]]:
    """The requested entries with each unnamed limit filled from ``defaults``: what
    "approve as asked" grants."""
    return [
        {**entry, "limits": effective_limits(entry.get("limits") or {}, defaults)}
        for entry in details
    ]
