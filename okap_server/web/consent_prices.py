"""What the consent page says about prices: which requested models no price lists, and
what approving them means (refused under a spend limit, or charged at the vault's
fallback price), so the person decides before approving, not after the app fails.

Rendered by ``templates/partials/unpriced.html``, included from ``consent.html``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from okap_server.context import Vault
from okap_server.prices.unpriced import unpriced_in_entries
from okap_server.settings import DefaultLimits


def unpriced_context(
    vault: Vault, details: Sequence[Mapping[str, Any]], defaults: DefaultLimits
) -> dict[str, Any]:
    """Template variables: ``unpriced`` (provider, model, spend_limited) and
    ``unpriced_fallback``, the price they are charged at if approved (None: refused under
    a spend limit)."""
    unpriced = unpriced_in_entries(details, vault.prices, vault.providers, defaults)
    fallback = vault.prices.fallback("", None) if unpriced else None
    return {
        "unpriced": [
            {"provider": _name(vault, u.provider), "model": u.model, "limited": u.spend_limited}
            for u in unpriced
        ],
        "unpriced_fallback": fallback.describe() if fallback else None,
    }


def _name(vault: Vault, provider: str) -> str:
    row = vault.providers.get(provider)
    return row.name if row is not None else provider
