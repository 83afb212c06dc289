"""One model's price, in the ``genai-prices`` shape, and what a request costs at it.

The library's :class:`~genai_prices.types.ModelPrice` carries every unit a provider bills
(input, cache reads and writes, output, reasoning, audio and image tokens, characters,
requests) and long-context tiers. A settled cost is what ``genai_prices.calc_price`` says
for the same usage (audio, image and video tokens, one-hour cache writes and web searches
each at its own rate): plain token prices are worked out here the library's way (its
general path is too slow for every request), anything else by the library itself. The
hold before forwarding prices the request's token bounds at the dearest rate each could be
billed at (image output for an image model, one-hour cache writes for Claude).

The unit registry is the library's private ``_get_registry``: hence the pin below 0.3.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import genai_prices
from genai_prices.types import ModelPrice, TieredPrices
from genai_prices.units import UnitDef, _get_registry

from okap_server.prices.exact import ExactRates, exact_rates
from okap_server.prices.usage import Usage

log = logging.getLogger("okap.prices")

MICROS_PER_USD = 1_000_000

# The plain token units of okap's usage; text-only usage, or any usage at a price in these
# alone, is priced here exactly as the library prices it (tests/server/test_prices.py
# checks), in a few microseconds rather than the library's general path (about 175 µs):
# settlement runs on every request. Modality tokens at a price that names them go to the
# library.
PLAIN_KEYS = frozenset({"input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok"})
WEB_SEARCHES = "web_searches_kcount"

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


def _rate(value: Decimal | TieredPrices, input_tokens: int) -> Decimal:
    """The rate that applies: past a tier's start (in input tokens) every token pays it."""
    if isinstance(value, TieredPrices):
        for tier in reversed(value.tiers):
            if input_tokens > tier.start:
                return tier.price
        return value.base
    return value


def to_micros(usd: Decimal) -> int:
    """USD to whole micro-dollars, rounded up: a cost is never rounded down to nothing."""
    return math.ceil(usd * MICROS_PER_USD)


# Usages a price's integer rates are checked on before they are used: odd counts (so a
# rounding shows), every long-context tier crossed, more cache than input.
_SAMPLES = (
    Usage(1, 1),
    Usage(12, 5, 2, 1, web_searches=1),
    Usage(333_333, 77_777, 111_111, 22_222, web_searches=3),
    Usage(1_234_567, 7, 1_000_001, 234_567),
    Usage(5, 0, 9, 9),
)


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
        """What the provider bills for ``usage``, as the library computes it. Text tokens
        alone (the common case), or any usage at a price in plain units alone (which bills
        a modality's tokens as the plain tokens they are part of), are worked out here, on
        integers (``exact.py``) unless the price's rates cannot be."""
        if not usage.plain:
            usage = usage.consistent()
            if self._plain[1]:
                return self._library_cost(usage)
        exact = self._exact
        if exact is not None:
            return exact.cost_micros(usage)
        return self.decimal_cost_micros(usage)

    def decimal_cost_micros(self, usage: Usage) -> int:
        """:meth:`cost_micros` of a plain usage in ``Decimal``: the definition the integer
        rates are checked against."""
        plain = self._plain[0]
        uncached = usage.input_tokens
        total = Decimal(0)
        for key, count in (
            ("cache_read_mtok", usage.cached_tokens),
            ("cache_write_mtok", usage.cache_write_tokens),
            ("output_mtok", usage.output_tokens),
        ):
            if key in plain:
                total += _rate(plain[key], usage.input_tokens) * count
                if key != "output_mtok":
                    uncached -= count
        if "input_mtok" in plain:
            total += _rate(plain["input_mtok"], usage.input_tokens) * max(uncached, 0)
        total /= MICROS_PER_USD
        if "requests_kcount" in plain:
            total += _rate(plain["requests_kcount"], usage.input_tokens) / 1000
        if usage.web_searches and WEB_SEARCHES in plain:
            searches = _rate(plain[WEB_SEARCHES], usage.input_tokens)
            total += searches * usage.web_searches / 1000
        return to_micros(total)

    def _library_cost(self, usage: Usage) -> int:
        """The library's price; if it refuses the price itself (a refreshed list with a
        part priced without its whole), every count at the dearest rate it could be."""
        try:
            return to_micros(self.model_price.calc_price(library_usage(usage))["total_price"])
        except ValueError as exc:
            log.warning("Settled %s at its dearest rates: %s", self.listed_as, exc)
        searches = dearest(self._plain[0].get(WEB_SEARCHES, Decimal(0))) * usage.web_searches
        worst = self.worst_case_micros(usage.input_tokens, usage.output_tokens)
        return worst + to_micros(searches / 1000)

    @functools.cached_property
    def _plain(self) -> tuple[dict[str, Decimal | TieredPrices], bool]:
        """The prices by key of okap's plain counts (the four token units, a per-request
        fee counted once, web searches), and whether the price also names token units
        only the library's path prices (audio, image, reasoning, 1-hour cache writes).
        Those units are parts of the plain ones: with none of them counted, the plain
        prices alone give the library's result. Units of other families okap's usage
        never reports (audio seconds) count zero."""
        plain: dict[str, Decimal | TieredPrices] = {}
        special = False
        for unit, value in price_units(self.model_price):
            if unit.price_key in PLAIN_KEYS or unit.dimensions.get("family") == "requests":
                plain[unit.price_key] = value
            elif unit.price_key == WEB_SEARCHES:
                plain[WEB_SEARCHES] = value
            elif unit.dimensions.get("family") == "tokens":
                special = True
        return plain, special

    def worst_case_micros(self, input_tokens: int, output_tokens: int) -> int:
        """Every input token at the dearest input rate (a cache write or an audio token can
        cost more than plain input, a long prompt crosses every tier), every output token at
        the dearest output rate, characters bounded by the input, and the per-request fee."""
        exact = self._exact
        if exact is not None:
            return exact.worst_case_micros(input_tokens, output_tokens)
        return self.decimal_worst_case_micros(input_tokens, output_tokens)

    def decimal_worst_case_micros(self, input_tokens: int, output_tokens: int) -> int:
        """:meth:`worst_case_micros` in ``Decimal`` (what the integer rates are checked
        against)."""
        per_input, per_output, per_character, fixed = self._worst_rates
        total = per_input * input_tokens + per_output * output_tokens
        return to_micros((total + per_character * input_tokens) / MICROS_PER_USD + fixed)

    @functools.cached_property
    def _worst_rates(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """USD per million input tokens, output tokens and characters, and USD per request,
        each at its dearest."""
        per_input = per_output = per_character = fixed = Decimal(0)
        for unit, value in price_units(self.model_price):
            rate = dearest(value)
            family = unit.dimensions.get("family")
            direction = unit.dimensions.get("direction")
            if family == "tokens" and direction == "input":
                per_input = max(per_input, rate)
            elif family == "tokens" and direction == "output":
                per_output = max(per_output, rate)
            elif family == "characters":
                per_character = max(per_character, rate * MICROS_PER_USD / unit.per)
            elif family == "requests":
                fixed += rate / unit.per
        return per_input, per_output, per_character, fixed

    @functools.cached_property
    def _exact(self) -> ExactRates | None:
        """The integer rates, if they give the Decimal path's results (checked here on
        usages that cross every tier, with cache reads and writes, searches and fees)."""

        def agrees(rates: ExactRates) -> bool:
            return all(
                rates.cost_micros(usage) == self.decimal_cost_micros(usage)
                and rates.worst_case_micros(usage.input_tokens, usage.output_tokens)
                == self.decimal_worst_case_micros(usage.input_tokens, usage.output_tokens)
                for usage in _SAMPLES
            )

        return exact_rates(self._plain[0], self._worst_rates, agrees)

    @functools.cached_property
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
    """okap's usage in the library's terms. Every count is given, zeros too: the library
    refuses to infer a count whose parts were reported (cached audio tokens given cached
    and audio ones)."""
    return genai_prices.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        input_audio_tokens=usage.input_audio_tokens,
        input_image_tokens=usage.input_image_tokens,
        input_video_tokens=usage.input_video_tokens,
        cache_audio_read_tokens=usage.cached_audio_tokens,
        cache_image_read_tokens=usage.cached_image_tokens,
        cache_video_read_tokens=usage.cached_video_tokens,
        output_audio_tokens=usage.output_audio_tokens,
        output_image_tokens=usage.output_image_tokens,
        output_video_tokens=usage.output_video_tokens,
        web_searches=usage.web_searches,
    )


def flat_price(per_million: float, source: str, listed_as: str) -> Price:
    """Every token at one rate: the vault's fallback for models nobody prices."""
    rate = as_decimal(per_million)
    return Price(ModelPrice(input_mtok=rate, output_mtok=rate), source, listed_as)
