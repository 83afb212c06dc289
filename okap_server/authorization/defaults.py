"""Default limits for apps that ask for none: the account's own, else the vault's.

``parse_limits`` fills a request that names no limits with ``Settings.default_limits``; the
person deciding may have set their own defaults (Account.preferences), which replace those
on the consent page and when approving from the Pending list.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from okap_server.accounts.models import Account
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


def with_account_defaults(
    details: list[dict[str, Any]], account_defaults: DefaultLimits, vault_defaults: DefaultLimits
) -> list[dict[str, Any]]:
    """Entries whose limits are exactly the vault's defaults (the app named none, so
    ``parse_limits`` filled them in) get this account's defaults instead."""
    if account_defaults == vault_defaults:
        return details
    filled = vault_defaults.model_dump()
    mine = account_defaults.model_dump()
    result = []
    for entry in details:
        limits = dict(entry.get("limits") or {})
        asked_none = all(limits.get(n) == filled.get(n) for n in set(limits) | set(filled))
        if asked_none:
            limits = {**limits, **mine}
        result.append({**entry, "limits": limits})
    return result
