"""Unit tests: the price table, its globs, overrides and the fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from okap_server.proxy.pricing import PriceFileError, PriceTable
from okap_server.proxy.providers.base import Usage


def test_shipped_table_states_its_source_and_date() -> None:
    from importlib import resources

    document = json.loads(resources.files("okap_server.proxy").joinpath("prices.json").read_text())
    assert document["source"].startswith("Public list prices") and document["as_of"]
    assert {"openai", "anthropic", "google"} <= set(document["prices"])


def test_the_most_specific_pattern_wins() -> None:
    table = PriceTable.load()
    assert table.known("openai", "gpt-4o-mini-2024-07-18").input == 0.15  # type: ignore[union-attr]
    assert table.known("openai", "gpt-4o-2024-08-06").input == 2.5  # type: ignore[union-attr]
    assert table.known("openai", "gpt-4o-2024-05-13").input == 5.0  # type: ignore[union-attr]
    assert table.known("google", "gemini-2.0-flash-lite-001").input == 0.075  # type: ignore[union-attr]
    assert table.known("google", "models/gemini-2.5-flash").output == 2.5  # type: ignore[union-attr]
    assert table.known("openai", "no-such-model") is None


def test_cost_counts_cached_and_cache_write_tokens_apart() -> None:
    price = PriceTable.load().known("anthropic", "claude-sonnet-4-5-20250929")
    assert price is not None
    usage = Usage(input_tokens=1000, output_tokens=100, cached_tokens=600, cache_write_tokens=100)
    assert price.cost_micros(usage) == 300 * 3 + 600 * 0.3 + 100 * 3.75 + 100 * 15


def test_override_file_and_fallback(tmp_path: Path) -> None:
    override = tmp_path / "prices.json"
    override.write_text(
        json.dumps(
            {
                "prices": {
                    "openai": {"gpt-4o-mini": {"input": 1, "output": 2}},
                    "ollama": {"llama*": {"input": 0, "output": 0}},
                }
            }
        )
    )
    table = PriceTable.load(override, fallback=7.0)
    assert table.known("openai", "gpt-4o-mini").output == 2.0  # type: ignore[union-attr]
    assert table.known("ollama", "llama3.1").input == 0.0  # type: ignore[union-attr]
    assert table.known("openai", "mystery") is None
    assert table.price("openai", "mystery").output == 7.0  # type: ignore[union-attr]
    override.write_text('{"prices": {"openai": {"x": {"input": "cheap"}}}}')
    with pytest.raises(PriceFileError, match="x: needs numeric"):
        PriceTable.load(override)
