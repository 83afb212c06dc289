"""Settlement charges what the provider bills, over real HTTP with the providers' SDKs: a
Gemini image answer's image tokens at the image rate ($120/M for gemini-3-pro-image-preview,
ten times text), Gemini audio input at the audio rate, an Anthropic one-hour cache write at
2x input (not the five-minute 1.25x), gpt-image output at the image rate; what
``/okap/usage`` shows spent is within 2% of ``genai_prices.calc_price`` for the same usage,
streamed or not, on both databases."""

from __future__ import annotations

import genai_prices
import openai
import pytest
from google.genai import types as genai_types

from okap_server.context import Vault
from tests.server.proxy.records import wait_until_settled
from tests.server.proxy.test_listed_prices import HI, default_entry, spent_today
from tests.server.proxy.test_sdks import anthropic_client, google_client
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import make_grant

# What Google reports for one 2K image from gemini-3-pro-image-preview.
GEMINI_IMAGE = FakeUsage(
    input=10,
    output=1_120,
    details={"candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1_120}]},
)
GEMINI_IMAGE_LIBRARY = genai_prices.Usage(
    input_tokens=10, output_tokens=1_120, output_image_tokens=1_120
)
# A transcription: nearly all of the prompt is audio ($1/M for gemini-2.5-flash, text $0.30/M).
GEMINI_AUDIO = FakeUsage(
    input=200_000,
    output=100,
    details={
        "promptTokensDetails": [
            {"modality": "AUDIO", "tokenCount": 199_990},
            {"modality": "TEXT", "tokenCount": 10},
        ]
    },
)
GEMINI_AUDIO_LIBRARY = genai_prices.Usage(
    input_tokens=200_000, output_tokens=100, input_audio_tokens=199_990
)
# 100k tokens written to Anthropic's one-hour cache ($6/M for claude-sonnet-4-5).
ANTHROPIC_HOUR = FakeUsage(
    input=10,
    output=5,
    details={
        "cache_creation_input_tokens": 100_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 100_000},
    },
)
ANTHROPIC_HOUR_LIBRARY = genai_prices.Usage(
    input_tokens=100_010,
    output_tokens=5,
    cache_write_tokens=100_000,
    cache_write_1h_tokens=100_000,
)


def google_entry() -> dict[str, object]:
    return {**default_entry("google"), "models": []}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("model", "usage", "library"),
    [
        ("gemini-3-pro-image-preview", GEMINI_IMAGE, GEMINI_IMAGE_LIBRARY),
        ("gemini-2.5-flash", GEMINI_AUDIO, GEMINI_AUDIO_LIBRARY),
    ],
)
def test_gemini_media_tokens_are_settled_at_their_rates(
    vault: Vault,
    live_url: str,
    fake_upstream: FakeUpstream,
    model: str,
    usage: FakeUsage,
    library: genai_prices.Usage,
    stream: bool,
) -> None:
    fake_upstream.usage["google"] = usage
    grant = make_grant(vault, google_entry())
    client = google_client(live_url, grant.token)
    config = genai_types.GenerateContentConfig(max_output_tokens=1_200)
    if stream:
        chunks = list(
            client.models.generate_content_stream(model=model, contents="draw", config=config)
        )
        assert chunks[-1].usage_metadata is not None
    else:
        answer = client.models.generate_content(model=model, contents="draw", config=config)
        assert answer.usage_metadata is not None
    wait_until_settled(vault)
    expected = float(genai_prices.calc_price(library, model, provider_id="google").total_price)
    text_only = float(
        genai_prices.calc_price(
            genai_prices.Usage(input_tokens=library.input_tokens, output_tokens=usage.output),
            model,
            provider_id="google",
        ).total_price
    )
    assert expected > 2 * text_only  # the media rate is what matters here
    assert spent_today(live_url, grant.token, "google") == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("stream", [False, True])
def test_an_anthropic_one_hour_cache_write_is_settled_at_twice_input(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream, stream: bool
) -> None:
    fake_upstream.usage["anthropic"] = ANTHROPIC_HOUR
    grant = make_grant(vault, default_entry("anthropic"))
    client = anthropic_client(live_url, grant.token)
    if stream:
        with client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=16,
            messages=HI,  # type: ignore[arg-type]
        ) as events:
            assert events.get_final_message().usage.cache_creation_input_tokens == 100_000
    else:
        answer = client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=16,
            messages=HI,  # type: ignore[arg-type]
        )
        assert answer.usage.cache_creation_input_tokens == 100_000
    wait_until_settled(vault)
    expected = float(
        genai_prices.calc_price(
            ANTHROPIC_HOUR_LIBRARY, "claude-sonnet-4-5", provider_id="anthropic"
        ).total_price
    )
    assert expected == pytest.approx(100_000 * 6e-6 + 10 * 3e-6 + 5 * 15e-6)
    assert spent_today(live_url, grant.token, "anthropic") == pytest.approx(expected, rel=0.02)


def test_a_gpt_image_answer_bills_its_output_as_image_tokens(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    """An images answer that does not split its output (as gpt-image-1 answers) is image
    tokens throughout: gpt-image-1.5 bills them at $32/M, its text output at $10/M."""
    fake_upstream.usage["openai"] = FakeUsage(input=20, output=6_240)
    grant = make_grant(vault, {**default_entry("openai"), "capabilities": ["images"]})
    client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=grant.token, max_retries=0)
    answer = client.images.generate(model="gpt-image-1.5", prompt="a cat")
    assert answer.usage is not None and answer.usage.output_tokens == 6_240
    wait_until_settled(vault)
    library = genai_prices.Usage(input_tokens=20, output_tokens=6_240, output_image_tokens=6_240)
    expected = float(
        genai_prices.calc_price(library, "gpt-image-1.5", provider_id="openai").total_price
    )
    assert expected == pytest.approx(20 * 5e-6 + 6_240 * 32e-6)
    assert spent_today(live_url, grant.token, "openai") == pytest.approx(expected, rel=0.02)
