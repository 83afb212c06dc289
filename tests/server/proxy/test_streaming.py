"""Streams pass through as they arrive, and are billed even when they end badly."""

from __future__ import annotations

import math
import time
from typing import Any

import anthropic
import httpx
import pytest

from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.grants.periods import day_key
from tests.server.proxy.records import spend, wait_for_logs, wait_until_settled
from tests.server.proxy.test_sdks import anthropic_client, openai_client
from tests.support.fake_upstream import FILE_CONTENT, BreakStream, FakeUpstream, SlowStream
from tests.support.grants import entry, make_grant

HI = [{"role": "user", "content": "hi"}]


def stream_chat(client: httpx.Client, live_url: str, token: str) -> Any:
    return client.stream(
        "POST",
        f"{live_url}/v1/openai/chat/completions",
        headers={"authorization": f"Bearer {token}"},
        json={"model": "gpt-4o-mini", "messages": HI, "stream": True, "max_tokens": 200},
    )


def test_chunks_arrive_as_the_upstream_sends_them(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai"))
    fake_upstream.script("openai", SlowStream(delay=0.1))
    arrivals = []
    with httpx.Client(timeout=10) as client:
        started = time.monotonic()
        with stream_chat(client, live_url, grant.token) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 8  # role, 5 pieces, finish, [DONE]; the usage chunk is dropped
    # Not buffered: the first event arrived long before the last one was sent.
    assert arrivals[0] < arrivals[-1] - 0.3


def test_a_client_that_disconnects_mid_stream_is_still_billed(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai", limits={"daily_spend": 1.0}))
    fake_upstream.script("openai", SlowStream(delay=0.3))
    with (
        httpx.Client(timeout=10) as client,
        stream_chat(client, live_url, grant.token) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                break  # the app goes away after the first event
    (log,) = wait_for_logs(vault, 1)
    assert log.status == 499 and log.error_type == "client_disconnected"
    wait_until_settled(vault)
    day = spend(vault, grant.grant_id, day_key(utcnow()))
    assert day is not None and day.reserved_micros == 0
    # Billed at the worst case it reserved (200 output tokens of gpt-4o-mini and the prompt).
    assert day.spent_micros == log.cost_micros >= 200 * 0.6
    assert fake_upstream.requests_for("openai")[0].json["stream_options"]["include_usage"]


def test_an_upstream_that_breaks_mid_stream_is_billed_and_the_app_sees_it(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("anthropic"))
    fake_upstream.script("anthropic", BreakStream(after_events=3))
    client = anthropic_client(live_url, grant.token)
    with (
        pytest.raises(Exception) as broke,
        client.messages.stream(model="claude-haiku-4-5", max_tokens=300, messages=HI) as stream,
    ):
        for _ in stream.text_stream:
            pass
    # The connection is cut, not ended cleanly, so the SDK cannot mistake it for a full answer.
    assert isinstance(broke.value, anthropic.APIError) or "incomplete" in str(broke.value)
    (log,) = wait_for_logs(vault, 1)
    assert log.status == 502 and log.error_type == "upstream_stream_broken"
    assert log.input_tokens == 12  # seen in message_start
    assert log.cost_micros >= 300 * 5  # never $0: the worst case of 300 output tokens
    # Bytes had reached the app, so the vault did not retry.
    assert len(fake_upstream.requests_for("anthropic")) == 1


def test_a_gemini_stream_without_sse_is_read_for_usage(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("google"))
    with httpx.stream(
        "POST",
        f"{live_url}/v1/google/v1beta/models/gemini-2.0-flash:streamGenerateContent",
        headers={"x-goog-api-key": grant.token},
        json={"contents": [{"parts": [{"text": "hi"}]}]},
    ) as response:
        text = response.read().decode()
    assert text.startswith("[") and text.endswith("]") and "fake" in text
    (log,) = wait_for_logs(vault, 1)
    assert (log.status, log.input_tokens, log.output_tokens) == (200, 12, 5)
    assert log.cost_micros == math.ceil(12 * 0.1 + 5 * 0.4)  # whole micro-dollars, rounded up


def test_a_large_binary_answer_passes_through_unchanged(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai", capabilities=["files"]))
    client = openai_client(live_url, grant.token)
    made = client.files.create(file=("in.jsonl", b"{}\n"), purpose="batch")
    content = client.files.content(made.id)
    assert content.read() == FILE_CONTENT
    _, log = wait_for_logs(vault, 2)
    assert (log.status, log.capability, log.cost_micros) == (200, "files", 0)
