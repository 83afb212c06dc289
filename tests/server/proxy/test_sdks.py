"""The providers' own SDKs work through the vault: chat, streamed chat and embeddings, with
the real key swapped in upstream and usage and cost recorded."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from okap_server.context import Vault
from tests.server.proxy.records import wait_for_logs
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import FAKE_KEYS, entry, make_grant

USAGE = FakeUsage(input=1000, output=500)


def openai_client(live_url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)


def anthropic_client(live_url: str, token: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{live_url}/v1/anthropic", api_key=token, max_retries=0)


def google_client(live_url: str, token: str) -> genai.Client:
    return genai.Client(
        api_key=token,
        http_options=genai_types.HttpOptions(
            base_url=f"{live_url}/v1/google",
            retry_options=genai_types.HttpRetryOptions(attempts=1),
        ),
    )


def assert_key_swapped(fake: FakeUpstream, provider: str, token: str, header: str) -> None:
    received = fake.requests_for(provider)
    assert received, f"nothing reached the {provider} upstream"
    for request in received:
        assert FAKE_KEYS[provider] in request.headers[header]
        everything = repr(request.headers) + repr(request.query) + request.body.decode()
        assert token not in everything
        assert request.headers["host"] == fake.url.removeprefix("http://")


def test_openai_chat_stream_and_embeddings(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = USAGE
    grant = make_grant(vault, entry("openai", models=["gpt-4o-mini", "text-embedding-3-*"]))
    client = openai_client(live_url, grant.token)

    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "Hello from the fake upstream."
    assert answer.usage is not None and answer.usage.prompt_tokens == 1000

    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream."
    # The vault asked for usage itself; the app, which did not, never sees that chunk.
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    streamed = fake_upstream.requests_for("openai")[-1].json
    assert streamed["stream_options"] == {"include_usage": True}

    vectors = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(vectors.data) == 2
    assert vectors.data[0].embedding == pytest.approx([0.1, 0.2, 0.3])

    assert_key_swapped(fake_upstream, "openai", grant.token, "authorization")
    logs = wait_for_logs(vault, 3)
    assert [(log.endpoint, log.status, log.streamed) for log in logs] == [
        ("POST chat/completions", 200, False),
        ("POST chat/completions", 200, True),
        ("POST embeddings", 200, False),
    ]
    chat, stream, embed = logs
    assert (chat.input_tokens, chat.output_tokens) == (1000, 500)
    assert chat.cost_micros == 1000 * 0.15 + 500 * 0.60  # gpt-4o-mini
    assert (stream.input_tokens, stream.output_tokens, stream.cost_micros) == (1000, 500, 450)
    assert embed.cost_micros == 1000 * 0.02 and embed.capability == "embeddings"
    assert all(log.grant_id == grant.grant_id and log.model for log in logs)


def test_openai_stream_when_the_app_asks_for_usage_itself(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai"))
    chunks = list(
        openai_client(live_url, grant.token).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


def test_anthropic_messages_stream_and_count_tokens(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["anthropic"] = USAGE
    grant = make_grant(vault, entry("anthropic", models=["claude-sonnet-4-5*"]))
    client = anthropic_client(live_url, grant.token)
    messages = [{"role": "user", "content": "hi"}]

    answer = client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=messages)
    assert answer.content[0].text == "Hello from the fake upstream."  # type: ignore[union-attr]

    with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=100, messages=messages
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the fake upstream."
    assert final.usage.output_tokens == 500

    # Anthropic has no embeddings API; its other everyday call is token counting.
    counted = client.messages.count_tokens(model="claude-sonnet-4-5", messages=messages)
    assert counted.input_tokens == 1000

    assert_key_swapped(fake_upstream, "anthropic", grant.token, "x-api-key")
    assert all("authorization" not in r.headers for r in fake_upstream.requests_for("anthropic"))
    logs = wait_for_logs(vault, 3)
    chat, streamed, count = logs
    assert chat.cost_micros == streamed.cost_micros == 1000 * 3 + 500 * 15
    assert streamed.streamed and (streamed.input_tokens, streamed.output_tokens) == (1000, 500)
    assert count.endpoint == "POST v1/messages/count_tokens" and count.cost_micros == 0


def test_anthropic_bearer_auth_token(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    """Recent SDK releases can send ``Authorization: Bearer`` (auth_token) instead."""
    grant = make_grant(vault, entry("anthropic"))
    client = anthropic.Anthropic(
        base_url=f"{live_url}/v1/anthropic", auth_token=grant.token, max_retries=0
    )
    client.messages.create(
        model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    sent = fake_upstream.requests_for("anthropic")[-1].headers
    assert sent["x-api-key"] == FAKE_KEYS["anthropic"] and "authorization" not in sent


def test_google_generate_stream_and_embed(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["google"] = USAGE
    grant = make_grant(vault, entry("gemini", models=["gemini-2.5-*", "gemini-embedding-*"]))
    client = google_client(live_url, grant.token)

    answer = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert answer.text == "Hello from the fake upstream."

    pieces = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert "".join(p.text or "" for p in pieces) == "Hello from the fake upstream."

    embedded = client.models.embed_content(model="gemini-embedding-001", contents="hi")
    assert embedded.embeddings and embedded.embeddings[0].values == pytest.approx([0.1, 0.2, 0.3])

    assert_key_swapped(fake_upstream, "google", grant.token, "x-goog-api-key")
    logs = wait_for_logs(vault, 3)
    chat, streamed, embed = logs
    assert chat.provider == "google" and chat.model == "gemini-2.5-flash"
    assert chat.cost_micros == streamed.cost_micros == 1000 * 0.30 + 500 * 2.50
    assert streamed.streamed and streamed.output_tokens == 500
    # Gemini reports no usage for embeddings: billed at the worst case, never $0.
    assert embed.capability == "embeddings" and embed.cost_micros > 0


def test_google_key_in_query_is_accepted_and_never_forwarded(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    import http.client

    grant = make_grant(vault, entry("google"))
    # The stdlib client, which logs nothing: the token in this URL is the app's to guard.
    conn = http.client.HTTPConnection(live_url.removeprefix("http://"), timeout=10)
    conn.request(
        "POST",
        f"/v1/google/v1beta/models/gemini-2.0-flash:generateContent?key={grant.token}",
        body=b'{"contents": [{"parts": [{"text": "hi"}]}]}',
        headers={"content-type": "application/json"},
    )
    assert conn.getresponse().status == 200
    conn.close()
    sent = fake_upstream.requests_for("google")[-1]
    assert "key" not in sent.query
    assert sent.headers["x-goog-api-key"] == FAKE_KEYS["google"]


def test_openai_responses_api_plain_and_streamed(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = USAGE
    grant = make_grant(vault, entry("openai", limits={"daily_spend": 1.0}))
    client = openai_client(live_url, grant.token)
    answer = client.responses.create(model="gpt-4.1-mini", input="hi")
    assert answer.output_text == "Hello from the fake upstream."
    events = list(client.responses.create(model="gpt-4.1-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    sent = fake_upstream.requests_for("openai")[-1].json
    assert sent["max_output_tokens"] == vault.settings.default_max_output_tokens
    assert "stream_options" not in sent
    logs = wait_for_logs(vault, 2)
    assert [log.cost_micros for log in logs] == [1000 * 0.4 + 500 * 1.6] * 2
