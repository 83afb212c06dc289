"""Which models of live grants no price lists: a call to one is refused under a spend
limit (never billed at $0), so ``okap-server prices``, ``doctor`` and the dashboard say so
before an app finds out. Also which models of a request, for the consent page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from okap_server.catalog import ProviderCatalog
from okap_server.clock import utcnow
from okap_server.grants.models import Grant
from okap_server.grants.view import Limits
from okap_server.prices.book import Prices
from okap_server.settings import DefaultLimits

GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class UnpricedModel:
    provider: str
    model: str
    # Under a spend limit a call is refused; without one it is recorded at no cost.
    spend_limited: bool
    grant_id: str = ""
    client_name: str = ""
    account_id: str = ""


def unpriced_in_entries(
    entries: Iterable[Mapping[str, Any]],
    prices: Prices,
    catalog: ProviderCatalog,
    defaults: DefaultLimits,
) -> list[UnpricedModel]:
    """The named models of ``ai_model_access`` entries that no listing prices (the
    fallback aside: it is what the person is asked to accept). Globs and "any model"
    are not looked up: they name no model to price."""
    found: list[UnpricedModel] = []
    for entry in entries:
        named = str(entry.get("provider", ""))
        provider = catalog.canonical(named) or named
        limited = Limits.from_details(entry.get("limits"), defaults).spend_limited
        for model in entry.get("models") or []:
            if not isinstance(model, str) or GLOB_CHARS & set(model):
                continue
            if prices.known(provider, model) is None:
                found.append(UnpricedModel(provider, model, limited))
    return found


def unpriced_in_live_grants(
    session: Session,
    prices: Prices,
    catalog: ProviderCatalog,
    defaults: DefaultLimits,
    account_id: str | None = None,
) -> list[UnpricedModel]:
    """Every unpriced model of every grant not revoked nor expired (of one account)."""
    query = select(Grant).where(col(Grant.revoked_at).is_(None), Grant.expires_at > utcnow())
    if account_id is not None:
        query = query.where(Grant.account_id == account_id)
    found: list[UnpricedModel] = []
    for grant in session.exec(query.order_by(col(Grant.created_at))):
        for item in unpriced_in_entries(grant.details, prices, catalog, defaults):
            found.append(
                UnpricedModel(
                    item.provider,
                    item.model,
                    item.spend_limited,
                    grant.id,
                    grant.client_name,
                    grant.account_id,
                )
            )
    return found
