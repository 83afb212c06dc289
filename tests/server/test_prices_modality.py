"""Settled costs of modality usage (audio, image and video tokens, one-hour cache writes,
web searches) agree with ``genai_prices.calc_price`` for every listed model, the hold is
never below them, and no report, however odd, is refused by the library."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pytest

from okap_server.proxy.providers.base import Usage
from tests.server.test_prices import LIBRARY_IDS, load


def library_counts(usage: Usage) -> genai_prices.Usage:
    """The same usage in the library's names, written out here rather than shared with the
    code under test."""
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


def modality_usage(rng: Any) -> Usage:
    """A usage that adds up: media input within the input, cached media within both."""
    audio, image, video = (rng.choice([0, 0, 300, 90_000]) for _ in range(3))
    cached_audio, cached_image, cached_video = (rng.randint(0, n) for n in (audio, image, video))
    cached = cached_audio + cached_image + cached_video + rng.choice([0, 500])
    written = rng.choice([0, 0, 2_000, 120_000])
    text = rng.choice([1, 900, 150_000])
    output_image, output_audio = rng.choice([0, 1_120]), rng.choice([0, 0, 3_900])
    return Usage(
        input_tokens=text + cached + written + audio - cached_audio + image - cached_image
        + video - cached_video,
        output_tokens=output_image + output_audio + rng.randint(0, 4_000),
        cached_tokens=cached,
        cache_write_tokens=written,
        input_audio_tokens=audio,
        input_image_tokens=image,
        input_video_tokens=video,
        cached_audio_tokens=cached_audio,
        cached_image_tokens=cached_image,
        cached_video_tokens=cached_video,
        cache_write_1h_tokens=rng.randint(0, written),
        output_audio_tokens=output_audio,
        output_image_tokens=output_image,
        web_searches=rng.choice([0, 0, 1, 3]),
    )  # fmt: skip


def test_modality_usage_costs_what_the_library_computes_for_every_listed_model(
    tmp_path: Path,
) -> None:
    """Audio, image and video tokens, one-hour cache writes and web searches: the settled
    cost is exactly ``calc_price``'s for every model of the providers okap ships, whether
    the price is plain (fast path) or names those units (the library's path), and the hold
    is never below it."""
    import random

    from okap_server.prices.price import to_micros

    prices = load(tmp_path)
    rng = random.Random(17)
    checked = 0
    for provider in prices.snapshot.providers:
        okap_id = next((k for k, v in LIBRARY_IDS.items() if v == provider.id), None)
        for model in provider.models if okap_id else []:
            price = prices.known(okap_id or "", model.id)
            if price is None:
                continue
            for _ in range(3):
                usage = modality_usage(rng)
                expected = price.model_price.calc_price(library_counts(usage))["total_price"]
                assert price.cost_micros(usage) == to_micros(expected), (provider.id, model.id)
                if usage.web_searches == 0:
                    held = price.worst_case_micros(usage.input_tokens, usage.output_tokens)
                    assert held >= price.cost_micros(usage), (provider.id, model.id)
                checked += 1
    assert checked > 300


@pytest.mark.parametrize(
    ("provider", "model", "usage", "micros"),
    [
        # 1,120 image tokens at $120/M, 10 input tokens at $2/M.
        (
            "google",
            "gemini-3-pro-image-preview",
            Usage(input_tokens=10, output_tokens=1_120, output_image_tokens=1_120),
            134_420,
        ),
        # 100k one-hour cache writes at 2x input ($6/M), 10 input at $3/M, 5 output at $15/M.
        (
            "anthropic",
            "claude-sonnet-4-5",
            Usage(
                input_tokens=100_010,
                output_tokens=5,
                cache_write_tokens=100_000,
                cache_write_1h_tokens=100_000,
            ),
            600_105,
        ),
        # Audio input at $1/M, text at $0.30/M, output at $2.50/M.
        (
            "google",
            "gemini-2.5-flash",
            Usage(input_tokens=200_000, output_tokens=100, input_audio_tokens=199_990),
            200_243,
        ),
        # gpt-image-1 edits: image input $10/M, text $5/M, image output $40/M.
        (
            "openai",
            "gpt-image-1",
            Usage(
                input_tokens=5_000,
                output_tokens=6_200,
                input_image_tokens=4_980,
                output_image_tokens=6_200,
            ),
            297_900,
        ),
        # Two web searches at $10/K on top of the tokens.
        ("openai", "gpt-5.2", Usage(input_tokens=100, output_tokens=10, web_searches=2), 20_315),
    ],
)
def test_the_attackers_cases_are_settled_at_the_list_rates(
    tmp_path: Path, provider: str, model: str, usage: Usage, micros: int
) -> None:
    price = load(tmp_path).price_for(provider, model)
    assert price is not None and price.cost_micros(usage) == micros
    if not usage.web_searches:
        assert price.worst_case_micros(usage.input_tokens, usage.output_tokens) >= micros


def test_a_price_the_library_refuses_settles_at_its_dearest_rates() -> None:
    """A part priced without its whole (the library refuses it) never settles at $0."""
    from genai_prices.types import ModelPrice

    from okap_server.prices.price import Price

    price = Price(
        ModelPrice(
            input_mtok=Decimal(1),
            cache_read_mtok=Decimal("0.1"),
            input_audio_mtok=Decimal(4),
            output_mtok=Decimal(2),
        ),
        "prices_file",
        "google/g",
    )
    usage = Usage(input_tokens=1_000, output_tokens=100, cached_tokens=10, input_audio_tokens=500)
    assert price.cost_micros(usage) == 1_000 * 4 + 100 * 2


def test_any_report_however_odd_is_priced_by_the_library(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Counts that do not add up (more audio than input, cached media unsplit) are made
    consistent before pricing, so the library never refuses them."""
    import random

    prices = load(tmp_path)
    rng = random.Random(18)
    models = [
        ("openai", "gpt-realtime"),
        ("google", "gemini-2.5-flash"),
        ("google", "gemini-live-2.5-flash"),
        ("anthropic", "claude-sonnet-4-5"),
        ("openai", "gpt-image-1.5"),
    ]
    for provider, model in models:
        price = prices.price_for(provider, model)
        assert price is not None
        for _ in range(200):
            usage = Usage(*(rng.choice([0, 0, 1, 70, 5_000]) for _ in range(15)))
            assert price.cost_micros(usage) >= 0
    assert not [r for r in caplog.records if "dearest rates" in r.getMessage()]
