"""The worst case a request is held at: every answer, and input its bytes do not show."""

from __future__ import annotations

import json
from typing import Any

import pytest

from okap_server.grants.view import Limits
from okap_server.proxy import errors
from okap_server.proxy.ijson import read_object
from okap_server.proxy.providers.base import Adapter
from okap_server.proxy.providers.google import GoogleAdapter
from okap_server.proxy.providers.openai import OpenAIAdapter
from okap_server.proxy.worst_case import PROMPT_OVERHEAD_TOKENS, Bounds, bound_request
from okap_server.settings import Settings

SETTINGS = Settings(proxy_reference_input_tokens=100_000, proxy_image_input_tokens=1_000)
LIMITED = Limits(daily_spend=1_000_000)
GENERATE = "v1beta/models/gemini-2.5-flash:generateContent"


def bound(adapter: Adapter, path: str, body: dict[str, Any], limits: Limits = LIMITED) -> Bounds:
    raw = json.dumps(body).encode()
    parsed = read_object(raw)
    route = adapter.route("POST", path, parsed)
    return bound_request(adapter, route, parsed, raw, False, limits, SETTINGS)


def test_output_is_every_answer_at_its_cap() -> None:
    chat = bound(OpenAIAdapter("openai"), "chat/completions", {"n": 128, "max_tokens": 4000})
    assert chat.output_tokens == 128 * 4000
    gemini = bound(GoogleAdapter("google"), GENERATE, {"generationConfig": {"candidateCount": 8}})
    assert gemini.output_tokens == 8 * SETTINGS.default_max_output_tokens
    assert json.loads(gemini.body)["generationConfig"]["maxOutputTokens"] == 4096


def test_input_the_bytes_do_not_show_is_counted() -> None:
    openai = OpenAIAdapter("openai")
    plain = bound(openai, "chat/completions", {"messages": []})
    assert plain.input_tokens == len(plain.body) + PROMPT_OVERHEAD_TOKENS
    image = {"type": "image_url", "image_url": {"url": "u"}}
    two = bound(openai, "chat/completions", {"messages": [{"content": [image, image]}]})
    assert two.input_tokens == len(two.body) + PROMPT_OVERHEAD_TOKENS + 2_000
    cached = bound(GoogleAdapter("google"), GENERATE, {"cachedContent": "cachedContents/c"})
    assert cached.input_tokens == len(cached.body) + PROMPT_OVERHEAD_TOKENS + 100_000
    assert any("cachedContent" in reason for reason in cached.reasons)


def test_what_cannot_be_bounded_is_refused_only_under_a_spend_limit() -> None:
    openai = OpenAIAdapter("openai")
    hosted = {"model": "gpt-4.1", "tools": [{"type": "code_interpreter"}]}
    with pytest.raises(errors.UnboundedCost):
        bound(openai, "responses", hosted)
    bound(openai, "responses", hosted, Limits(requests_per_day=10))
    with pytest.raises(errors.TokensPerRequestExceeded):
        bound(openai, "chat/completions", {"n": 3}, Limits(tokens_per_request=2))
    route = openai.route("POST", "chat/completions", None)
    with pytest.raises(errors.InvalidJson):
        bound_request(openai, route, None, b"model=gpt-4o", False, LIMITED, SETTINGS)


def test_partial_images_are_held_alike_in_json_and_in_a_form() -> None:
    """An image edit's streamed partial images (100 output tokens each) are held whether
    the edit comes as JSON or as a multipart form: one rule for both."""
    openai = OpenAIAdapter("openai")
    asked = {"model": "gpt-image-1", "prompt": "a cat", "stream": True, "partial_images": 3}
    as_json = bound(openai, "images/edits", asked)
    form = {name: str(value).lower() for name, value in asked.items()}
    route = openai.route("POST", "images/edits", form)
    as_form = bound_request(openai, route, form, b"--b\r\n", True, LIMITED, SETTINGS)
    assert as_json.output_tokens == as_form.output_tokens == 6_240 + 3 * 100
