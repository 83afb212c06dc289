"""What a request costs: usage times the price table (USD per million tokens).

The shipped table (``prices.json``) states its source and date. ``Settings.prices_file``
(same shape) adds or overrides entries. A price in USD per million tokens is exactly
micro-dollars per token, so costs are integers of micro-dollars, rounded up.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Any

from okap_server.proxy.providers.base import Usage

MICROS_PER_USD = 1_000_000


class PriceFileError(Exception):
    """The price file is missing or malformed; the message names the file and entry."""


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cached_input: float
    cache_write: float

    def cost_micros(self, usage: Usage) -> int:
        plain = max(usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens, 0)
        total = (
            plain * self.input
            + usage.cached_tokens * self.cached_input
            + usage.cache_write_tokens * self.cache_write
            + usage.output_tokens * self.output
        )
        return math.ceil(total - 1e-9)

    @classmethod
    def flat(cls, per_million: float) -> Price:
        return cls(per_million, per_million, per_million, per_million)


def _parse_price(where: str, raw: Any) -> Price:
    if not isinstance(raw, dict):
        raise PriceFileError(f"{where}: must be an object")
    try:
        values = {k: float(raw[k]) for k in ("input", "output")}
        cached = float(raw.get("cached_input", values["input"]))
        write = float(raw.get("cache_write", values["input"]))
    except (KeyError, TypeError, ValueError):
        raise PriceFileError(f"{where}: needs numeric input and output") from None
    if min(values["input"], values["output"], cached, write) < 0:
        raise PriceFileError(f"{where}: prices cannot be negative")
    return Price(values["input"], values["output"], cached, write)


def _read_table(text: str, where: str) -> dict[str, dict[str, Price]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PriceFileError(f"{where}: not JSON ({exc.msg})") from None
    prices = document.get("prices") if isinstance(document, dict) else None
    if not isinstance(prices, dict):
        raise PriceFileError(f"{where}: needs a 'prices' object")
    table: dict[str, dict[str, Price]] = {}
    for provider, models in prices.items():
        if not isinstance(models, dict):
            raise PriceFileError(f"{where}: prices.{provider} must be an object")
        table[provider.lower()] = {
            pattern: _parse_price(f"{where}: {provider}/{pattern}", raw)
            for pattern, raw in models.items()
        }
    return table


class PriceTable:
    """Prices by provider and model pattern; the most specific pattern wins."""

    def __init__(self, table: dict[str, dict[str, Price]], fallback: float | None = None):
        self._table = table
        self._fallback = Price.flat(fallback) if fallback is not None else None
        self._found: dict[tuple[str, str], Price | None] = {}

    @classmethod
    def load(cls, override: Path | None = None, fallback: float | None = None) -> PriceTable:
        shipped = resources.files("okap_server.proxy").joinpath("prices.json").read_text()
        table = _read_table(shipped, "prices.json")
        if override is not None:
            try:
                text = override.read_text()
            except OSError as exc:
                raise PriceFileError(f"{override}: {exc.strerror}") from None
            for provider, models in _read_table(text, str(override)).items():
                table.setdefault(provider, {}).update(models)
        return cls(table, fallback)

    def known(self, provider: str, model: str | None) -> Price | None:
        """The listed price, or None: the caller decides between fallback and refusal."""
        if not model:
            return None
        key = (provider, model)
        if key not in self._found:
            if len(self._found) > 4096:  # apps choose model names; keep the memo bounded
                self._found.clear()
            self._found[key] = self._match(provider, model)
        return self._found[key]

    def price(self, provider: str, model: str | None) -> Price | None:
        """The listed price, else the configured fallback, else None."""
        return self.known(provider, model) or self._fallback

    def _match(self, provider: str, model: str) -> Price | None:
        models = self._table.get(provider, {})
        if model in models:
            return models[model]
        bare = model.rsplit("/", 1)[-1]  # "models/gemini-2.0-flash", "openai/gpt-4o"
        if bare in models:
            return models[bare]
        matches = [p for p in models if fnmatchcase(bare, p)]
        if not matches:
            return None
        return models[max(matches, key=lambda p: len(p.replace("*", "").replace("?", "")))]
