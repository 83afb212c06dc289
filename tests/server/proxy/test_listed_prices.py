"""Issue 16: with the default limits, the providers' own SDKs call current models of every
family through the vault, and what ``/okap/usage`` shows they spent is what
``genai_prices.calc_price`` says the usage the fake upstream returned costs. A model no
price lists is refused under a spend limit, and nothing reaches the upstream."""

from __future__ import annotations

from typing import Any

import anthropic
import genai_prices
import httpx
import openai
import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.server.proxy.records import wait_until_settled
from tests.server.proxy.test_sdks import anthropic_client
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import make_grant

USAGE = FakeUsage(input=20_000, output=3_000, cached=4_000)
LIBRARY_USAGE = genai_prices.Usage(
    input_tokens=20_000, output_tokens=3_000, cache_read_tokens=4_000
)
HI = [{"role": "user", "content": "hi"}]
# OpenAI-compatible providers: each answered by the fake's OpenAI family.
OPENAI_FAMILY = ("groq", "mistral", "xai")


@pytest.fixture
def settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    routed = {p: f"{fake_upstream.url}/openai/v1" for p in OPENAI_FAMILY}
    return settings.model_copy(update={"upstreams": {**settings.upstreams, **routed}})


def default_entry(provider: str) -> dict[str, Any]:
    """An entry stored with no limits: the vault's default limits (spend limits) apply."""
    return {
        "type": "ai_model_access",
        "provider": provider,
        "models": [],
        "capabilities": ["chat"],
        "reason": "tests",
    }


def spent_today(live_url: str, token: str, provider: str) -> float:
    answer = httpx.get(f"{live_url}/okap/usage", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    spend = answer.json()["usage"][provider]["spend"]
    assert spend["day"]["limit"] == 1.0  # the default daily limit
    return float(spend["day"]["used"])


@pytest.mark.parametrize(
    ("provider", "library_id", "model"),
    [
        ("groq", "groq", "llama-3.3-70b-versatile"),
        ("mistral", "mistral", "mistral-large-latest"),
        ("xai", "x-ai", "grok-4"),
        ("openai", "openai", "gpt-5.2"),
    ],
)
def test_openai_sdk_pays_listed_prices_under_default_limits(
    vault: Vault,
    live_url: str,
    fake_upstream: FakeUpstream,
    provider: str,
    library_id: str,
    model: str,
) -> None:
    fake_upstream.usage["openai"] = USAGE
    grant = make_grant(vault, default_entry(provider))
    client = openai.OpenAI(base_url=f"{live_url}/v1/{provider}", api_key=grant.token, max_retries=0)
    answer = client.chat.completions.with_raw_response.create(model=model, messages=HI)  # type: ignore[arg-type]
    assert answer.status_code == 200
    wait_until_settled(vault)
    expected = float(
        genai_prices.calc_price(LIBRARY_USAGE, model, provider_id=library_id).total_price
    )
    assert expected > 0
    assert spent_today(live_url, grant.token, provider) == pytest.approx(expected, rel=0.02)


def test_anthropic_sdk_pays_listed_prices_under_default_limits(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["anthropic"] = USAGE
    grant = make_grant(vault, default_entry("anthropic"))
    answer = anthropic_client(live_url, grant.token).messages.with_raw_response.create(
        model="claude-opus-4-6",
        max_tokens=4000,
        messages=HI,  # type: ignore[arg-type]
    )
    assert answer.status_code == 200
    wait_until_settled(vault)
    expected = genai_prices.calc_price(LIBRARY_USAGE, "claude-opus-4-6", provider_id="anthropic")
    assert spent_today(live_url, grant.token, "anthropic") == pytest.approx(
        float(expected.total_price), rel=0.02
    )


def test_an_unpriced_model_is_refused_and_nothing_goes_upstream(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, default_entry("groq"))
    client = openai.OpenAI(base_url=f"{live_url}/v1/groq", api_key=grant.token, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="my-private-llama", messages=HI)  # type: ignore[arg-type]
    message = refused.value.message
    assert refused.value.code == "price_unknown"
    assert "my-private-llama" in message and "price" in message
    assert "okap-server prices refresh" in message and "OKAP_PRICES_FILE" in message
    assert fake_upstream.received == []

    anthropic_grant = make_grant(vault, default_entry("anthropic"), client_name="Other")
    with pytest.raises(anthropic.PermissionDeniedError) as also:
        anthropic_client(live_url, anthropic_grant.token).messages.create(
            model="claude-private-1",
            max_tokens=10,
            messages=HI,  # type: ignore[arg-type]
        )
    assert "claude-private-1" in str(also.value) and "price" in str(also.value)
    assert fake_upstream.received == []
