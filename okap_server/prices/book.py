"""The vault's prices: the operator's entries first, then the ``genai-prices`` data, then
the vault's fallback per-million price, if it has one.

okap's provider ids are not always the library's (``xai`` is ``x-ai``): each provider row
says which library provider prices it (``ProviderRow.prices_provider``), so a new
provider is one more row, not a branch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from genai_prices.data_snapshot import DataSnapshot
from genai_prices.types import ModelInfo, ModelPrice

from okap_server.prices.overrides import OverrideTable, read_overrides
from okap_server.prices.price import Price, flat_price
from okap_server.prices.snapshot import SnapshotInfo, load_snapshot
from okap_server.settings import Settings

MEMO_LIMIT = 4096  # apps choose model names; keep the memo of lookups bounded

# What a lookup found: an operator's entry, a library model, or nothing.
Found = tuple[str, ModelPrice | ModelInfo, str] | None


class Prices:
    """Prices by okap provider id and model name. ``price_for`` is what the proxy holds
    and settles a request at; ``known`` is the listed price alone (the consent page, the
    dashboard and ``doctor`` report models without one)."""

    def __init__(
        self,
        snapshot: DataSnapshot,
        info: SnapshotInfo,
        overrides: OverrideTable,
        library_ids: Mapping[str, str | None],
        fallback_per_million: float | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.info = info
        self._overrides = overrides
        self._library_ids = dict(library_ids)
        self.fallback_per_million = fallback_per_million
        self._found: dict[tuple[str, str], Found] = {}
        # One Price per listed price, so what it works out once is kept (see Price._plain).
        self._prices: dict[int, Price] = {}

    @classmethod
    def load(cls, settings: Settings, library_ids: Mapping[str, str | None]) -> Prices:
        """Read the data and the operator's file; raises ``PriceFileError`` on a bad file."""
        snapshot, info = load_snapshot(settings.home)
        overrides = read_overrides(settings.prices_file) if settings.prices_file else {}
        return cls(snapshot, info, overrides, library_ids, settings.fallback_price_per_million)

    def known(self, provider: str, model: str | None, at: datetime | None = None) -> Price | None:
        """The listed price of ``model`` at ``provider``, or None: the caller decides
        between the fallback and a refusal. A listing the vault cannot hold against a
        spend limit (a model billed only by the audio hour) counts as none."""
        if not model:
            return None
        key = (provider, model)
        if key not in self._found:
            if len(self._found) >= MEMO_LIMIT:
                self._found.clear()
            self._found[key] = self._lookup(provider, model)
        found = self._found[key]
        if found is None:
            return None
        source, listing, listed_as = found
        if isinstance(listing, ModelInfo):
            listing = listing.get_prices(at or datetime.now(UTC))
        price = self._prices.get(id(listing))
        if price is None or price.model_price is not listing or price.listed_as != listed_as:
            if len(self._prices) >= MEMO_LIMIT:
                self._prices.clear()
            price = self._prices[id(listing)] = Price(listing, source, listed_as)
        return price if price.boundable else None

    def price_for(
        self, provider: str, model: str | None, at: datetime | None = None
    ) -> Price | None:
        """The listed price, else the fallback, else None (refused under a spend limit)."""
        return self.known(provider, model, at) or self.fallback(provider, model)

    def fallback(self, provider: str, model: str | None) -> Price | None:
        if self.fallback_per_million is None:
            return None
        return flat_price(self.fallback_per_million, "fallback", f"{provider}/{model or '?'}")

    def library_id(self, provider: str) -> str | None:
        return self._library_ids.get(provider)

    def _lookup(self, provider: str, model: str) -> Found:
        bare = model.rsplit("/", 1)[-1]  # "models/gemini-2.0-flash", "openai/gpt-4o"
        patterns = self._overrides.get(provider, {})
        for name in (model, bare):
            if name in patterns:
                return ("prices_file", patterns[name], f"{provider}/{name}")
        matches = [p for p in patterns if fnmatchcase(bare, p)]
        if matches:
            best = max(matches, key=lambda p: len(p.replace("*", "").replace("?", "")))
            return ("prices_file", patterns[best], f"{provider}/{best}")
        library_id = self._library_ids.get(provider)
        if library_id is None:
            return None
        for name in dict.fromkeys((model, bare)):
            try:
                lib_provider, info = self.snapshot.find_provider_model(name, None, library_id, None)
            except LookupError:
                continue
            return ("genai-prices", info, f"{lib_provider.id}/{info.id}")
        return None
