"""Prices worked out on integers (``prices/exact.py``) are the Decimal path's, and so the
library's: every listed model of okap's providers, tiers, caches, fees and searches."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import genai_prices
from genai_prices.types import ModelPrice, Tier, TieredPrices

from okap_server.catalog import ProviderCatalog
from okap_server.prices import Prices
from okap_server.prices.price import Price, to_micros
from okap_server.prices.usage import Usage
from okap_server.settings import Settings


def usages(rng: random.Random) -> list[Usage]:
    found = []
    for _ in range(4):
        total = rng.choice([0, 1, 7, 900, 150_000, 200_001, 250_000, 1_200_000])
        cached = rng.randint(0, total)
        written = rng.randint(0, total - cached)
        found.append(Usage(total, rng.randint(0, 40_000), cached, written))
    return found


def test_every_listed_price_is_exact_and_agrees_with_decimal_and_the_library(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path)
    catalog = ProviderCatalog.from_settings(settings)
    prices = Prices.load(settings, catalog.prices_providers())
    ours = {row.prices_provider: row.id for row in catalog.rows() if row.prices_provider}
    rng = random.Random(17)
    checked = tiered = 0
    for provider in prices.snapshot.providers:
        okap_id = ours.get(provider.id)
        if okap_id is None:
            continue
        for model in provider.models:
            price = prices.known(okap_id, model.id)
            if price is None or price._plain[1]:
                continue
            assert price._exact is not None, model.id  # no listed price needs Decimal
            tiered += price._exact.flat is None
            for usage in usages(rng):
                cost = price.cost_micros(usage)
                assert cost == price.decimal_cost_micros(usage), (provider.id, model.id)
                library = price.model_price.calc_price(
                    genai_prices.Usage(
                        input_tokens=usage.input_tokens,
                        output_tokens=usage.output_tokens,
                        cache_read_tokens=usage.cached_tokens,
                        cache_write_tokens=usage.cache_write_tokens,
                    )
                )["total_price"]
                assert cost == to_micros(library), (provider.id, model.id)
                worst = price.worst_case_micros(usage.input_tokens, usage.output_tokens)
                assert worst == price.decimal_worst_case_micros(
                    usage.input_tokens, usage.output_tokens
                )
                checked += 1
    assert checked > 300 and tiered > 0


def test_fees_searches_characters_and_tiers_on_integers() -> None:
    """An operator's odd price: many decimal places, a tier, a per-request fee, web
    searches and characters; rounding up to a whole micro-dollar, never down."""
    model_price = ModelPrice(
        input_mtok=TieredPrices(
            base=Decimal("0.1234567"), tiers=[Tier(start=1000, price=Decimal("0.3"))]
        ),
        output_mtok=Decimal("1.0000001"),
        cache_read_mtok=Decimal("0.01"),
        requests_kcount=Decimal("0.0045"),
        web_searches_kcount=Decimal("10.5"),
        input_mchars=Decimal("0.25"),
    )
    price = Price(model_price, "prices_file", "local/odd")
    assert price._exact is not None and price._exact.flat is None
    for usage in (
        Usage(1, 1),
        Usage(999, 3, 500),
        Usage(1000, 3, 0),
        Usage(1001, 3, 1001),
        Usage(77, 0, web_searches=3),
        Usage(0, 0),
    ):
        assert price.cost_micros(usage) == price.decimal_cost_micros(usage.consistent())
    assert price.cost_micros(Usage(1, 0)) == 5  # 0.12 micro-dollars + a 4.5 fee: 5, not 4
    for tokens in (0, 1, 999, 1000, 1001, 123_457):
        assert price.worst_case_micros(tokens, 9) == price.decimal_worst_case_micros(tokens, 9)


def test_a_price_that_cannot_be_exact_keeps_the_decimal_path() -> None:
    price = Price(
        ModelPrice(input_mtok=Decimal("1e-20"), output_mtok=Decimal(1)), "prices_file", "x/y"
    )
    assert price._exact is None  # beyond MAX_PLACES
    assert price.cost_micros(Usage(10, 10)) == price.decimal_cost_micros(Usage(10, 10)) == 11
