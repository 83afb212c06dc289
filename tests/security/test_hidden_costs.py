"""What the app cannot hide from the hold or the settlement: the fields of the answer the
vault reads usage from (Google's field masks, OpenAI's stream usage), a media part of a
type the vault has never heard of, audio output and search models under a spend limit.
Over real HTTP against the fake upstream, asserted on what it received and on the audit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from okap_server.context import Vault
from tests.security.conftest import sqlite_only
from tests.server.proxy.records import wait_for_logs
from tests.server.proxy.test_sdks import openai_client
from tests.support.fake_upstream import FakeUpstream, Respond
from tests.support.grants import entry, make_grant

pytestmark = sqlite_only
LIMITED = {"daily_spend": 5.0}
FLASH = "/v1/google/v1beta/models/gemini-2.5-flash"
CHAT = "/v1/openai/chat/completions"


def post(live_url: str, path: str, token: str, body: Any, **headers: str) -> httpx.Response:
    sent = {"x-goog-api-key": token, "authorization": f"Bearer {token}", **headers}
    return httpx.post(f"{live_url}{path}", json=body, headers=sent, timeout=15)


def gemini_answer(usage: dict[str, int]) -> dict[str, Any]:
    part = {"content": {"parts": [{"text": "a long essay"}], "role": "model"}}
    return {"candidates": [{**part, "finishReason": "STOP"}], "usageMetadata": usage}


def test_an_app_cannot_choose_which_fields_a_gemini_answer_keeps(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    """Field masks never reach Google; an answer whose usage lacks the output count anyway
    is settled at the hold (its worst case), not at its input alone."""
    token = make_grant(vault, entry("google", limits=LIMITED)).token
    body = {
        "contents": [{"parts": [{"text": "essay"}]}],
        "generationConfig": {"maxOutputTokens": 8000},
    }
    mask = "candidates,usageMetadata.promptTokenCount"
    path = f"{FLASH}:generateContent?fields={mask}&%24fields={mask}&alt=json"
    fake_upstream.script("google", Respond(200, body=gemini_answer({"promptTokenCount": 10})))
    answer = post(live_url, path, token, body, **{"X-Goog-FieldMask": mask})
    assert answer.status_code == 200, answer.text
    sent = fake_upstream.received[-1]
    assert sent.query == {"alt": "json"}
    assert "x-goog-fieldmask" not in {name.lower() for name in sent.headers}
    complete = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
    fake_upstream.script("google", Respond(200, body=gemini_answer(complete)))
    assert post(live_url, f"{FLASH}:generateContent", token, body).status_code == 200
    masked, full = (row.cost_micros for row in wait_for_logs(vault, 2))
    assert full < 100 and masked >= 8000 * 2.5  # 8,000 tokens at $2.50 per million


def test_an_app_cannot_turn_off_stream_usage(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    """``include_usage: false`` is overwritten: the vault asks for the usage chunk and
    keeps it from the app, which asked for none."""
    client = openai_client(live_url, make_grant(vault, entry("openai", limits=LIMITED)).token)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": False},
        )
    )
    assert all(chunk.usage is None for chunk in chunks)
    assert fake_upstream.received[-1].json["stream_options"] == {"include_usage": True}
    (row,) = wait_for_logs(vault, 1)
    assert (row.input_tokens, row.output_tokens) == (12, 5)


@pytest.mark.parametrize(
    "part",
    [
        {"type": "document_url", "document_url": "https://arxiv.org/pdf/1805.04770"},
        {"type": "video_url", "video_url": {"url": "https://example.com/a.mp4"}},
        {"type": "audio_url", "audio_url": "https://example.com/a.mp3"},
        {"type": "input_pdf", "fileUri": "https://example.com/a.pdf"},
    ],
    ids=["document_url", "video_url", "audio_url", "any_file"],
)
def test_a_media_part_the_vault_does_not_know_is_held_at_the_reference_bound(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream, part: dict[str, Any]
) -> None:
    """At $0.05 a day a text or image request fits, a part whose input the vault cannot
    size (held as ``proxy_reference_input_tokens``, 1M tokens) does not."""
    token = make_grant(vault, entry("openai", limits={"daily_spend": 0.05})).token

    def ask(*parts: dict[str, Any]) -> httpx.Response:
        content = [{"type": "text", "text": "read this"}, *parts]
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
        return post(live_url, CHAT, token, body)

    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    assert ask(image).status_code == 200
    answer = ask(part)
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"]["code"] == "budget_exceeded"
    assert part["type"] in answer.json()["error"]["message"]
    assert len(fake_upstream.received) == 1


OPENAI_UNBOUNDED = [
    {"model": "gpt-4o-mini-search-preview"},
    {"model": "gpt-5-search-api"},
    {"model": "gpt-4o-mini-audio-preview", "modalities": ["text", "audio"]},
    {"model": "gpt-4o-audio-preview", "audio": {"voice": "alloy", "format": "wav"}},
]
GOOGLE_UNBOUNDED = [
    {"generationConfig": {"responseModalities": ["AUDIO"]}},
    {"generation_config": {"response_modalities": ["audio"]}},
    {"generationConfig": {"speechConfig": {"voiceConfig": {}}}},
]


def test_audio_output_and_search_models_are_refused_under_a_spend_limit(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    """They bill per audio token or per search, which the vault does not hold in advance;
    a grant without a spend limit uses them."""
    limited = make_grant(vault, entry("openai", limits=LIMITED), entry("google", limits=LIMITED))
    free = make_grant(vault, entry("openai"), entry("google"), client_name="Free")
    hi = [{"role": "user", "content": "hi"}]
    gemini = [{"parts": [{"text": "say hi"}]}]
    calls = [(CHAT, {**b, "messages": hi}) for b in OPENAI_UNBOUNDED] + [
        (f"{FLASH}:generateContent", {**b, "contents": gemini}) for b in GOOGLE_UNBOUNDED
    ]
    for path, body in calls:
        answer = post(live_url, path, limited.token, body)
        assert answer.status_code == 403, (body, answer.text)
        assert answer.headers["x-okap-error"] == "unbounded_cost"
        message = answer.json()["error"]["message"]
        assert "audio" in message or "search" in message
    assert fake_upstream.received == []
    for path, body in calls:
        assert post(live_url, path, free.token, body).status_code == 200
