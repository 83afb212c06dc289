"""One model's price, in the ``genai-prices`` shape, and what a request costs at it.

The library's :class:`~genai_prices.types.ModelPrice` carries every unit a provider bills
(input, cache reads and writes, output, reasoning, audio and image tokens, characters,
requests) and long-context tiers. Settlement asks the library itself for the cost, so a
settled cost is what ``genai_prices.calc_price`` says for the same usage. The hold before
forwarding prices the request's token bounds at the dearest rate each could be billed at.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import genai_prices
from genai_prices.types import ModelPrice, TieredPrices
from genai_prices.units import UnitDef, _get_registry

from okap_server.proxy.providers.base import Usage

MICROS_PER_USD = 1_000_000

# Unit families the vault can count before forwarding (tokens and characters from the
# body, one request); a price in any other family alone (audio hours, pixels, pages) is
# one the vault cannot hold against a spend limit.
BOUNDED_FAMILIES = frozenset({"tokens", "characters"})


def price_units(model_price: ModelPrice) -> Iterator[tuple[UnitDef, Decimal | TieredPrices]]:
    """Every (unit, price) the model price sets, in the library's own unit registry."""
    registry = _get_registry()
    for key, value in vars(model_price).items():
        if value is None or key.startswith("_"):
            continue
        try:
            yield registry.unit_for_price_key(key), value
        except KeyError:
            continue


def dearest(value: Decimal | TieredPrices) -> Decimal:
    """The highest rate a tiered price can reach (a long prompt crosses every tier)."""
    if isinstance(value, TieredPrices):
        return max([value.base, *(tier.price for tier in value.tiers)])
    return value


def as_decimal(value: float) -> Decimal:
    """A price read from JSON or settings, exactly as written (7.0 shows as 7, 0.1 as 0.1)."""
    exact = Decimal(str(value))
    return exact.quantize(Decimal(1)) if exact == exact.to_integral_value() else exact.normalize()


def to_micros(usd: Decimal) -> int:
    """USD to whole micro-dollars, rounded up: a cost is never rounded down to nothing."""
    return math.ceil(usd * MICROS_PER_USD)


@dataclass(frozen=True)
class Price:
    """The price one request is held and settled at.

    ``source`` says where it came from: ``genai-prices``, the operator's ``prices_file``,
    or ``fallback`` (the vault's fallback per-million price, for a model nobody prices).
    ``listed_as`` is the provider and model the source lists it under.
    """

    model_price: ModelPrice
    source: str
    listed_as: str

    def cost_micros(self, usage: Usage) -> int:
        """What the provider bills for ``usage``, as the library computes it."""
        calc = self.model_price.calc_price(library_usage(usage))
        return to_micros(calc["total_price"])

    def worst_case_micros(self, input_tokens: int, output_tokens: int) -> int:
        """Every input token at the dearest input rate (a cache write or an audio token can
        cost more than plain input, a long prompt crosses every tier), every output token at
        the dearest output rate, characters bounded by the input, and the per-request fee."""
        per_input = per_output = Decimal(0)
        total = Decimal(0)
        for unit, value in price_units(self.model_price):
            rate = dearest(value)
            family = unit.dimensions.get("family")
            direction = unit.dimensions.get("direction")
            if family == "tokens" and direction == "input":
                per_input = max(per_input, rate)
            elif family == "tokens" and direction == "output":
                per_output = max(per_output, rate)
            elif family == "characters":
                total += rate * input_tokens / unit.per
            elif family == "requests":
                total += rate / unit.per
        total += (per_input * input_tokens + per_output * output_tokens) / MICROS_PER_USD
        return to_micros(total)

    @property
    def boundable(self) -> bool:
        """Whether any of its units is one the vault can count before forwarding."""
        return any(
            unit.dimensions.get("family") in BOUNDED_FAMILIES
            for unit, _ in price_units(self.model_price)
        )

    def describe(self) -> str:
        """One line, in the library's words (``$1.25/input MTok, $10/output MTok``)."""
        return str(self.model_price)


def library_usage(usage: Usage) -> genai_prices.Usage:
    """okap's usage in the library's terms: input includes cache reads and writes in both."""
    return genai_prices.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )


def flat_price(per_million: float, source: str, listed_as: str) -> Price:
    """Every token at one rate: the vault's fallback for models nobody prices."""
    rate = as_decimal(per_million)
    return Price(ModelPrice(input_mtok=rate, output_mtok=rate), source, listed_as)
