"""One price's rates as integers, worked out once, so pricing a request is integer arithmetic.

A request is priced three times (its hold twice, its settlement once), and in ``Decimal``
each cost was a few microseconds of the event loop's time. A rate in USD per million
tokens is also micro-dollars per token, so a cost in micro-dollars is the sum of each count
times its rate, rounded up (``price.to_micros``). Every rate a price lists is a finite
decimal: scaled by ``10**d``, where ``d`` is the most decimal places any of them has, each
is an exact integer, and the cost is ``ceil(sum / 10**d)``, computed exactly on integers.
That is the ``Decimal`` result whenever the ``Decimal`` arithmetic was exact (28 digits;
always so for listed prices), and :func:`exact_rates` checks it on sample usages and
leaves the ``Decimal`` path in charge of any price where it is not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from genai_prices.types import TieredPrices

from okap_server.prices.usage import Usage

# Past this many decimal places a price is left to the Decimal path (no listed price has
# more than a handful; the integers stay small).
MAX_PLACES = 18

# (first input-token count past which the rate applies, scaled rate), from the highest
# tier down; the base rate last, from -1 (every count is past it).
Tiers = tuple[tuple[int, int], ...]


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # NaN or infinity: not a price
        raise ValueError("not a finite rate")
    return max(-exponent, 0)


def _decimals(value: Decimal | TieredPrices) -> list[Decimal]:
    if isinstance(value, TieredPrices):
        return [value.base, *(tier.price for tier in value.tiers)]
    return [value]


def _scaled(value: Decimal, scale: int) -> int:
    scaled = value * scale
    if scaled != scaled.to_integral_value():
        raise ValueError("not exact at this scale")
    return int(scaled)


def _tiers(value: Decimal | TieredPrices | None, scale: int) -> Tiers:
    """As ``price._rate`` picks a rate: past a tier's start every token pays it."""
    if value is None:
        return ((-1, 0),)
    if isinstance(value, TieredPrices):
        tiers = [(tier.start, _scaled(tier.price, scale)) for tier in value.tiers]
        return (*reversed(tiers), (-1, _scaled(value.base, scale)))
    return ((-1, _scaled(value, scale)),)


def _at(tiers: Tiers, input_tokens: int) -> int:
    for start, rate in tiers:
        if input_tokens > start:
            return rate
    return tiers[-1][1]


@dataclass(frozen=True)
class ExactRates:
    """Scaled integer rates: micro-dollars times ``scale`` per input, cache-read,
    cache-write and output token, per request (the fee) and per web search, each by
    long-context tier; ``flat`` is the same six rates of a price without tiers (the common
    case, read without a tier lookup). ``worst``: the worst case's dearest rates per input
    token, output token and character, and its fixed part."""

    scale: int
    tiers: tuple[Tiers, Tiers, Tiers, Tiers, Tiers, Tiers]
    flat: tuple[int, int, int, int, int, int] | None
    has_cache_read: bool
    has_cache_write: bool
    worst: tuple[int, int, int, int]

    def cost_micros(self, usage: Usage) -> int:
        """``Price.decimal_cost_micros`` of a plain usage, on integers."""
        tokens = usage.input_tokens
        if self.flat is not None:
            per_input, per_read, per_write, per_output, fee, per_search = self.flat
        else:
            per_input, per_read, per_write, per_output, fee, per_search = [
                _at(tiers, tokens) for tiers in self.tiers
            ]
        total = per_output * usage.output_tokens + fee
        uncached = tokens
        if self.has_cache_read:
            total += per_read * usage.cached_tokens
            uncached -= usage.cached_tokens
        if self.has_cache_write:
            total += per_write * usage.cache_write_tokens
            uncached -= usage.cache_write_tokens
        if uncached > 0:
            total += per_input * uncached
        if usage.web_searches:
            total += per_search * usage.web_searches
        return -(-total // self.scale)

    def worst_case_micros(self, input_tokens: int, output_tokens: int) -> int:
        """``Price.decimal_worst_case_micros``, on integers."""
        per_input, per_output, per_character, fixed = self.worst
        total = (per_input + per_character) * input_tokens + per_output * output_tokens + fixed
        return -(-total // self.scale)


def exact_rates(
    plain: Mapping[str, Decimal | TieredPrices],
    worst: tuple[Decimal, Decimal, Decimal, Decimal],
    check: Callable[[ExactRates], bool],
) -> ExactRates | None:
    """The integer rates of a price's plain rates (``Price._plain``) and dearest rates
    (``Price._worst_rates``); None if they cannot be exact, or ``check`` (a comparison
    with the Decimal path) finds they are not."""
    per_input, per_output, per_character, fixed = worst
    fee = plain.get("requests_kcount")
    searches = plain.get("web_searches_kcount")
    values = [d for v in plain.values() for d in _decimals(v)]
    values += [per_input, per_output, per_character, fixed * 1_000_000]
    values += [d * 1000 for v in (fee, searches) if v is not None for d in _decimals(v)]
    try:
        places = max(_places(v) for v in values)
        if places > MAX_PLACES:
            return None
        scale = 10**places
        tiers = (
            _tiers(plain.get("input_mtok"), scale),
            _tiers(plain.get("cache_read_mtok"), scale),
            _tiers(plain.get("cache_write_mtok"), scale),
            _tiers(plain.get("output_mtok"), scale),
            _tiers(fee, scale * 1000),
            _tiers(searches, scale * 1000),
        )
        flat = tuple(t[0][1] for t in tiers) if all(len(t) == 1 for t in tiers) else None
        rates = ExactRates(
            scale=scale,
            tiers=tiers,
            flat=flat,  # type: ignore[arg-type]
            has_cache_read="cache_read_mtok" in plain,
            has_cache_write="cache_write_mtok" in plain,
            worst=(
                _scaled(per_input, scale),
                _scaled(per_output, scale),
                _scaled(per_character, scale),
                _scaled(fixed * 1_000_000, scale),
            ),
        )
    except ValueError:
        return None
    return rates if check(rates) else None
