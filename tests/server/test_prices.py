"""Prices: the genai-prices data, the operator's file on top, the fallback, and costs that
agree with ``genai_prices.calc_price`` for the same usage."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest

from okap_server.catalog import ProviderCatalog
from okap_server.prices import PriceFileError, Prices
from okap_server.proxy.providers.base import Usage
from okap_server.settings import CustomProvider, Settings


def load(tmp_path: Path, **changes: object) -> Prices:
    settings = Settings(home=tmp_path, **changes)  # type: ignore[arg-type]
    return Prices.load(settings, ProviderCatalog.from_settings(settings).prices_providers())


USAGE = Usage(
    input_tokens=12_000, output_tokens=3_000, cached_tokens=2_000, cache_write_tokens=1_000
)
LIBRARY_USAGE = genai_prices.Usage(
    input_tokens=12_000, output_tokens=3_000, cache_read_tokens=2_000, cache_write_tokens=1_000
)


@pytest.mark.parametrize(
    ("provider", "library_id", "model"),
    [
        ("groq", "groq", "llama-3.3-70b-versatile"),
        ("mistral", "mistral", "mistral-large-latest"),
        ("xai", "x-ai", "grok-4"),
        ("openai", "openai", "gpt-5.2"),
        ("anthropic", "anthropic", "claude-opus-4-6"),
        ("deepseek", "deepseek", "deepseek-chat"),
        ("google", "google", "gemini-2.5-pro"),
    ],
)
def test_settled_cost_is_what_the_library_computes(
    tmp_path: Path, provider: str, library_id: str, model: str
) -> None:
    price = load(tmp_path).price_for(provider, model)
    assert price is not None and price.source == "genai-prices"
    expected = genai_prices.calc_price(LIBRARY_USAGE, model, provider_id=library_id).total_price
    assert price.cost_micros(USAGE) == int(
        (expected * 1_000_000).to_integral_value("ROUND_CEILING")
    )
    assert expected > 0


def test_google_model_paths_and_long_context_tiers(tmp_path: Path) -> None:
    prices = load(tmp_path)
    price = prices.price_for("google", "models/gemini-2.5-pro")
    assert price is not None and price.listed_as == "google/gemini-2.5-pro"
    short = price.cost_micros(Usage(input_tokens=100_000, output_tokens=1_000))
    long = price.cost_micros(Usage(input_tokens=300_000, output_tokens=1_000))
    assert long > 3 * short  # past 200k tokens every token is billed at the higher rate
    # The hold prices every input token at the top tier's rate.
    assert price.worst_case_micros(300_000, 1_000) >= long


def test_the_hold_is_never_below_the_settled_cost(tmp_path: Path) -> None:
    price = load(tmp_path).price_for("anthropic", "claude-opus-4-6")
    assert price is not None
    for usage in (
        Usage(input_tokens=10_000, output_tokens=2_000),
        Usage(input_tokens=10_000, output_tokens=2_000, cached_tokens=10_000),
        Usage(input_tokens=10_000, output_tokens=2_000, cache_write_tokens=10_000),
    ):
        assert price.worst_case_micros(10_000, 2_000) >= price.cost_micros(usage)


def test_unknown_models_have_no_price_unless_a_fallback_is_set(tmp_path: Path) -> None:
    assert load(tmp_path).price_for("groq", "my-private-model") is None
    # Billed only by the audio hour: nothing the vault can hold before forwarding.
    assert load(tmp_path).price_for("openai", "whisper-1") is None
    fallback = load(tmp_path, fallback_price_per_million=7.0).price_for("groq", "mystery")
    assert fallback is not None and fallback.source == "fallback"
    assert fallback.cost_micros(Usage(input_tokens=100, output_tokens=100)) == 1_400


def test_the_operators_file_wins_and_prices_private_models(tmp_path: Path) -> None:
    override = tmp_path / "mine.json"
    override.write_text(
        json.dumps(
            {
                "prices": {
                    "openai": {"gpt-5.2": {"input_mtok": 1, "output_mtok": 2}},
                    "ollama": {"llama*": {"input": 0.5, "output": 0.5}},
                    "vllm": {
                        "big": {
                            "input_mtok": {"base": 1, "tiers": [{"start": 1000, "price": 3}]},
                            "output_mtok": 4,
                        }
                    },
                }
            }
        )
    )
    prices = load(
        tmp_path,
        prices_file=override,
        providers=[
            CustomProvider(id="ollama", base_url="http://127.0.0.1:11434/v1"),
            CustomProvider(id="vllm", base_url="http://127.0.0.1:8000/v1"),
        ],
    )
    mine = prices.price_for("openai", "gpt-5.2")
    assert mine is not None and mine.source == "prices_file"
    assert mine.cost_micros(Usage(input_tokens=1_000, output_tokens=1_000)) == 3_000
    llama = prices.price_for("ollama", "llama3.1")
    assert llama is not None and llama.listed_as == "ollama/llama*"
    big = prices.price_for("vllm", "big")
    assert big is not None
    assert big.cost_micros(Usage(input_tokens=2_000)) == 6_000  # the tier's rate
    assert prices.price_for("openai", "gpt-4o-mini") is not None  # the library still prices


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            '{"prices": {"openai": {"x": {"input_mtok": "cheap"}}}}',
            "openai/x: input_mtok: must be a number",
        ),
        (
            '{"prices": {"openai": {"x": {"input_mtok": -1}}}}',
            "openai/x: input_mtok: a price cannot be negative",
        ),
        (
            '{"prices": {"openai": {"x": {"input_mtok": true}}}}',
            "openai/x: input_mtok: must be a number",
        ),
        (
            '{"prices": {"openai": {"x": {"inptu_mtok": 1}}}}',
            "openai/x: 'inptu_mtok' is not a price key",
        ),
        ('{"prices": {"openai": {"x": {}}}}', "openai/x: must be an object of prices"),
        (
            '{"prices": {"google": {"g": {"input_mtok": 1, "input_audio_mtok": 2, '
            '"cache_read_mtok": 0.1}}}}',
            "google/g: Missing join price for cache_read_tokens and input_audio_tokens",
        ),
        (
            '{"prices": {"google": {"g": {"output_image_mtok": 30}}}}',
            "google/g: Missing ancestor price for output_image_tokens: output_tokens",
        ),
        ('{"prices": {"openai": []}}', "prices.openai must be an object"),
        ('{"prices": []}', "needs a 'prices' object"),
        ("{not json", "not JSON"),
    ],
)
def test_a_bad_prices_file_is_refused_naming_the_file_and_entry(
    tmp_path: Path, document: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(document)
    with pytest.raises(PriceFileError) as refused:
        load(tmp_path, prices_file=bad)
    assert str(refused.value).startswith(f"{bad}: ")
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_shipped_snapshot_states_its_version_and_date(tmp_path: Path) -> None:
    info = load(tmp_path).info
    assert info.source == "shipped" and info.package_version == genai_prices.__version__
    assert info.data_date
    assert Decimal(0) < load(tmp_path).price_for("openai", "gpt-5.2").model_price.input_mtok  # type: ignore[union-attr,operator]


def test_the_fast_path_agrees_with_the_library_for_every_listed_model(tmp_path: Path) -> None:
    """Settlement computes plain token prices itself (the library's general path is slow):
    for every model of the providers okap ships, and usages that cross long-context tiers,
    the cost is exactly what ``calc_price`` says."""
    import random

    from okap_server.prices.price import to_micros

    prices = load(tmp_path)
    rng = random.Random(16)
    checked = 0
    for provider in prices.snapshot.providers:
        for model in provider.models:
            okap_id = next((k for k, v in LIBRARY_IDS.items() if v == provider.id), None)
            if okap_id is None:
                continue
            price = prices.known(okap_id, model.id)
            if price is None:
                continue
            for _ in range(3):
                total = rng.choice([0, 1, 900, 150_000, 250_000, 1_200_000])
                cached = rng.randint(0, total)
                written = rng.randint(0, total - cached)
                usage = Usage(total, rng.randint(0, 40_000), cached, written)
                expected = price.model_price.calc_price(
                    genai_prices.Usage(
                        input_tokens=usage.input_tokens,
                        output_tokens=usage.output_tokens,
                        cache_read_tokens=cached,
                        cache_write_tokens=written,
                    )
                )["total_price"]
                assert price.cost_micros(usage) == to_micros(expected), (provider.id, model.id)
                checked += 1
    assert checked > 300


LIBRARY_IDS = {
    row.id: row.prices_provider
    for row in ProviderCatalog.from_settings(Settings()).rows()
    if row.prices_provider
}


def test_a_custom_provider_row_names_its_price_list(tmp_path: Path) -> None:
    """Azure- and Bedrock-style deployments: the row says which list prices them."""
    prices = load(
        tmp_path,
        providers=[
            CustomProvider(
                id="azure-openai",
                base_url="https://example.openai.azure.com/openai/v1",
                prices_provider="azure",
            ),
            CustomProvider(id="local", base_url="http://127.0.0.1:8000/v1"),
        ],
    )
    price = prices.price_for("azure-openai", "gpt-4o")
    assert price is not None and price.listed_as == "azure/gpt-4o"
    assert prices.price_for("local", "gpt-4o") is None  # a row naming no list: its file only
