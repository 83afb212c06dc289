"""The built-in ``cohere`` row (the OKAP reference's provider id): one row of data on the
OpenAI adapter, pointed at Cohere's Compatibility API, and the reference's ``vision`` and
``code`` capabilities as the endpoints the proxy enforces for them."""

from __future__ import annotations

import openai
import pytest

from okap_server.context import Vault
from okap_server.proxy.providers.catalog import ProviderCatalog
from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant

COHERE_KEY = "cohere-REALKEY0123456789abcdefghijklmnXYZ"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    """Cohere's upstream at the fake's OpenAI-compatible API."""
    upstreams = {**settings.upstreams, "cohere": fake_upstream.upstreams()["openai"]}
    return settings.model_copy(update={"upstreams": upstreams})


def test_the_builtin_row_points_at_the_compatibility_api() -> None:
    row = ProviderCatalog.from_settings(Settings()).get("cohere")
    assert row is not None and row.family == "openai" and row.auth_style == "bearer"
    assert row.upstream == "https://api.cohere.ai/compatibility/v1"
    assert row.stream_usage_option is False  # the Compatibility API refuses stream_options


def test_a_cohere_grant_works_with_the_openai_sdk(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    from tests.support.grants import ensure_account, ensure_key

    ensure_key(vault, ensure_account(vault), "cohere", COHERE_KEY)
    issued = make_grant(vault, entry("cohere", models=["command-a-*"]))
    client = openai.OpenAI(base_url=f"{live_url}/v1/cohere", api_key=issued.token, max_retries=0)
    answer = client.chat.completions.create(model="command-a-03-2025", messages=HI)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "Hello from the fake upstream."
    stream = client.chat.completions.create(model="command-a-03-2025", messages=HI, stream=True)  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    sent = fake_upstream.requests_for("openai")
    assert [r.headers["authorization"] for r in sent] == [f"Bearer {COHERE_KEY}"] * 2
    assert "stream_options" not in (sent[-1].json or {})
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("granted", "allowed", "refused"),
    [
        (["vision"], ["chat"], ["embeddings", "completions"]),
        (["code"], ["chat", "completions"], ["embeddings"]),
    ],
)
def test_vision_and_code_allow_the_endpoints_they_mean(
    vault: Vault, live_url: str, granted: list[str], allowed: list[str], refused: list[str]
) -> None:
    issued = make_grant(vault, entry("openai", capabilities=granted))
    client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=issued.token, max_retries=0)
    calls = {
        "chat": lambda: client.chat.completions.create(model="gpt-4o-mini", messages=HI),  # type: ignore[arg-type]
        "completions": lambda: client.completions.create(model="gpt-4o-mini", prompt="def f("),
        "embeddings": lambda: client.embeddings.create(model="text-embedding-3-small", input="x"),
    }
    for name in allowed:
        assert calls[name]() is not None
    for name in refused:
        with pytest.raises(openai.PermissionDeniedError) as refusal:
            calls[name]()
        assert refusal.value.code == "capability_not_granted"
