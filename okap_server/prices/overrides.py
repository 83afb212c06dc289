"""The operator's own prices (``OKAP_PRICES_FILE``): private models, negotiated rates.

Shape (documented in README "Prices")::

    {"prices": {"<okap provider id>": {"<model or glob>": {"input_mtok": 0.5,
                                                            "output_mtok": 1.5}}}}

Price keys are the ``genai-prices`` ones (``input_mtok``, ``cache_read_mtok``,
``cache_write_mtok``, ``output_mtok``, ``output_reasoning_mtok``, ``input_mchars``,
``requests_kcount``...), in USD per million tokens (per unit the key names). A price may be
tiered: ``{"base": 1.25, "tiers": [{"start": 200000, "price": 2.5}]}``. The older okap keys
(``input``, ``output``, ``cached_input``, ``cache_write``) still read, as their new names.
A file that does not read stops start-up with one line naming the file and the entry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from genai_prices.types import ModelPrice, Tier, TieredPrices
from genai_prices.units import _get_registry
from genai_prices.validation import validate_model_price

from okap_server.prices.price import as_decimal
from okap_server.settings import SettingsError

# okap's earlier price keys, and the library's names for them.
LEGACY_KEYS: Mapping[str, str] = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cached_input": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
}

# Patterns by okap provider id, then model name or glob.
OverrideTable = dict[str, dict[str, ModelPrice]]


class PriceFileError(SettingsError):
    """The prices file is missing or malformed; the message names the file and entry.

    A :class:`~okap_server.settings.SettingsError`, so the command line reports it as one
    line and the vault does not start."""


def read_overrides(path: Path) -> OverrideTable:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PriceFileError(f"{path}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PriceFileError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    prices = document.get("prices") if isinstance(document, dict) else None
    if not isinstance(prices, dict):
        raise PriceFileError(f"{path}: needs a 'prices' object")
    table: OverrideTable = {}
    for provider, models in prices.items():
        if not isinstance(models, dict):
            raise PriceFileError(f"{path}: prices.{provider} must be an object")
        table[provider.lower()] = {
            pattern: _model_price(f"{path}: {provider}/{pattern}", raw)
            for pattern, raw in models.items()
        }
    return table


def _model_price(where: str, raw: Any) -> ModelPrice:
    if not isinstance(raw, dict) or not raw:
        raise PriceFileError(f'{where}: must be an object of prices, e.g. {{"input_mtok": 1}}')
    registry = _get_registry()
    values: dict[str, Decimal | TieredPrices] = {}
    for key, value in raw.items():
        name = LEGACY_KEYS.get(key, key)
        try:
            registry.unit_for_price_key(name)
        except KeyError:
            raise PriceFileError(f"{where}: '{key}' is not a price key (e.g. input_mtok)") from None
        values[name] = _amount(f"{where}: {key}", value)
    try:
        # The library prices a part only with its whole and every overlap of two parts
        # (``input_audio_mtok`` and ``cache_read_mtok`` need ``cache_audio_read_mtok``);
        # refused here, not when a request's usage first names that part.
        validate_model_price(set(values), registry)
    except ValueError as exc:
        raise PriceFileError(f"{where}: {exc}") from None
    return ModelPrice(**values)


def _amount(where: str, value: Any) -> Decimal | TieredPrices:
    if isinstance(value, dict):
        tiers = value.get("tiers")
        if not isinstance(tiers, list):
            raise PriceFileError(f"{where}: a tiered price needs 'base' and a 'tiers' list")
        parsed: list[Tier] = []
        for i, tier in enumerate(tiers):
            if not isinstance(tier, dict) or not _is_count(tier.get("start")):
                raise PriceFileError(f"{where}: tiers[{i}] needs a whole 'start' and a 'price'")
            parsed.append(
                Tier(start=tier["start"], price=_number(f"{where}: tiers[{i}]", tier.get("price")))
            )
        return TieredPrices(base=_number(f"{where}: base", value.get("base")), tiers=parsed)
    return _number(where, value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(where: str, value: Any) -> Decimal:
    """A price: a finite, non-negative number (a string or a boolean is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PriceFileError(f"{where}: must be a number (USD), not {json.dumps(value)[:40]}")
    if value < 0:
        raise PriceFileError(f"{where}: a price cannot be negative ({value})")
    return as_decimal(value)
