"""Every endpoint that can cost money is priced or, under a spend limit, refused; and the
model allow-list holds on every endpoint that names a model (batches, cached contents).

Asserted with each provider's own SDK: the refusal is its usual permission error, and
nothing reaches the fake upstream.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import pytest
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from okap_server.context import Vault
from tests.security.conftest import sqlite_only
from tests.server.authorization.conftest import RedirectListener, details_json, start_code_flow
from tests.server.proxy.records import wait_for_logs
from tests.server.proxy.test_sdks import anthropic_client, google_client, openai_client
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant
from tests.support.person import Person

pytestmark = sqlite_only
LIMITED = {"daily_spend": 5.0}
EVERYTHING = ["chat", "completions", "embeddings", "images", "audio", "batch", "files"]
BATCH_ITEM = {
    "custom_id": "one",
    "params": {
        "model": "claude-opus-4-1",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    },
}


def cache_config() -> genai_types.CreateCachedContentConfig:
    return genai_types.CreateCachedContentConfig(contents=["a long book"], ttl="3600s")


def test_cached_contents_and_batches_obey_the_model_allow_list(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    """No spend limit here: the allow-list alone must refuse the other models."""
    google = make_grant(vault, entry("google", models=["gemini-2.5-flash"]))
    client = google_client(live_url, google.token)
    with pytest.raises(genai_errors.ClientError) as cached:
        client.caches.create(model="gemini-2.5-pro", config=cache_config())
    assert cached.value.code == 403 and "gemini-2.5-pro" in str(cached.value.message)

    claude = make_grant(
        vault, entry("anthropic", models=["claude-haiku-*"], capabilities=["chat", "batch"])
    )
    with pytest.raises(anthropic.PermissionDeniedError) as batched:
        anthropic_client(live_url, claude.token).messages.batches.create(requests=[BATCH_ITEM])
    assert "claude-opus-4-1" in batched.value.message

    gpt = make_grant(vault, entry("openai", models=["gpt-4o-mini"], capabilities=["chat", "batch"]))
    with pytest.raises(openai.PermissionDeniedError) as unseen:
        openai_client(live_url, gpt.token).batches.create(
            input_file_id="file-abc", endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert unseen.value.code == "model_not_allowed" and "file" in unseen.value.message
    assert fake_upstream.received == []


@pytest.mark.parametrize(
    ("provider", "call", "what"),
    [
        (
            "openai",
            lambda c: c.batches.create(
                input_file_id="file-abc", endpoint="/v1/chat/completions", completion_window="24h"
            ),
            "batches",
        ),
        (
            "openai",
            lambda c: c.audio.speech.create(model="tts-1", voice="alloy", input="hi"),
            "audio",
        ),
        (
            "openai",
            lambda c: c.responses.create(
                model="gpt-4.1-mini", input="news?", tools=[{"type": "web_search"}]
            ),
            "web_search",
        ),
        (
            "openai",
            lambda c: c.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hi"}],
                service_tier="priority",
            ),
            "priority",
        ),
        (
            "anthropic",
            lambda c: c.messages.batches.create(requests=[BATCH_ITEM]),
            "batches",
        ),
        (
            "anthropic",
            lambda c: c.messages.create(
                model="claude-sonnet-4-5",
                max_tokens=100,
                messages=[{"role": "user", "content": "news?"}],
                tools=[{"type": "web_search_20250305", "name": "web_search"}],
            ),
            "web_search_20250305",
        ),
        (
            "google",
            lambda c: c.caches.create(model="gemini-2.5-flash", config=cache_config()),
            "cached",
        ),
        (
            "google",
            lambda c: c.models.generate_content(
                model="gemini-2.5-flash",
                contents="news?",
                config=genai_types.GenerateContentConfig(
                    tools=[genai_types.Tool(google_search=genai_types.GoogleSearch())]
                ),
            ),
            "googleSearch",
        ),
    ],
    ids=[
        "openai-batches",
        "openai-audio",
        "openai-hosted-tool",
        "openai-priority-tier",
        "anthropic-batches",
        "anthropic-server-tool",
        "gemini-cachedContents",
        "gemini-google-search",
    ],
)
def test_unbounded_costs_are_refused_under_a_spend_limit(
    vault: Vault,
    live_url: str,
    fake_upstream: FakeUpstream,
    provider: str,
    call: Any,
    what: str,
) -> None:
    grant = make_grant(vault, entry(provider, capabilities=EVERYTHING, limits=LIMITED))
    clients = {"openai": openai_client, "anthropic": anthropic_client, "google": google_client}
    with pytest.raises(Exception) as refused:
        call(clients[provider](live_url, grant.token))
    error = refused.value
    if isinstance(error, genai_errors.ClientError):
        assert error.code == 403 and what in str(error.message)
    else:
        assert isinstance(error, openai.PermissionDeniedError | anthropic.PermissionDeniedError)
        assert "spend limit" in error.message and what in error.message
    assert fake_upstream.received == []
    [logged] = wait_for_logs(vault, 1)
    assert logged.error_type == "unbounded_cost" and logged.cost_micros == 0


def test_without_a_spend_limit_a_batch_goes_through(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    free = make_grant(vault, entry("openai", capabilities=["batch", "files"]))
    client = openai_client(live_url, free.token)
    uploaded = client.files.create(file=("batch.jsonl", b"{}"), purpose="batch")
    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert created.input_file_id == uploaded.id
    assert [r.path for r in fake_upstream.requests_for("openai")] == [
        "/openai/v1/files",
        "/openai/v1/batches",
    ]


def test_the_consent_page_says_what_a_spend_limit_refuses(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    asked = details_json({"type": "ai_model_access", "provider": "openai"})
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri, authorization_details=asked)
        page = person.open(consent).text
    assert "cannot bound in advance" in page and "batches" in page
