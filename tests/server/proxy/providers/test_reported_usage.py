"""Each family's usage report, from a JSON answer and from a stream, counts every kind of
token a provider bills at its own rate: audio, image and video tokens, one-hour cache
writes, web searches."""

from __future__ import annotations

import json
from typing import Any

from okap_server.proxy.providers.anthropic import AnthropicAdapter
from okap_server.proxy.providers.base import StreamObserver, Usage
from okap_server.proxy.providers.google import GoogleAdapter
from okap_server.proxy.providers.openai import OpenAIAdapter

OPENAI = OpenAIAdapter("openai")
ANTHROPIC = AnthropicAdapter("anthropic")
GOOGLE = GoogleAdapter("google")


def streamed(observer: StreamObserver, *events: dict[str, Any]) -> Usage:
    for event in events:
        observer.observe(json.dumps(event).encode())
    assert observer.usage is not None
    return observer.usage


def test_openai_chat_audio_in_and_out() -> None:
    usage = {
        "prompt_tokens": 500,
        "completion_tokens": 4_000,
        "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 300},
        "completion_tokens_details": {"audio_tokens": 3_900, "reasoning_tokens": 0},
    }
    expected = Usage(
        input_tokens=500,
        output_tokens=4_000,
        cached_tokens=100,
        input_audio_tokens=300,
        output_audio_tokens=3_900,
    )
    assert OPENAI.usage_from_json({"object": "chat.completion", "usage": usage}) == expected
    chunk = {"object": "chat.completion.chunk", "choices": [], "usage": usage}
    assert streamed(OPENAI.stream_observer(injected_usage=True), chunk) == expected


def test_openai_image_edits_split_input_and_bill_output_as_image() -> None:
    usage = {
        "input_tokens": 5_000,
        "output_tokens": 6_200,
        "total_tokens": 11_200,
        "input_tokens_details": {"text_tokens": 20, "image_tokens": 4_980},
    }
    answer = {"created": 1, "data": [{"b64_json": "AAAA"}], "usage": usage}
    expected = Usage(
        input_tokens=5_000, output_tokens=6_200, input_image_tokens=4_980, output_image_tokens=6_200
    )
    assert OPENAI.usage_from_json(answer) == expected
    event = {"type": "image_edit.completed", "b64_json": "AAAA", "usage": usage}
    assert streamed(OPENAI.stream_observer(injected_usage=False), event) == expected
    # A model that splits its output (gpt-image-1.5) bills only the image part as image.
    split = {**usage, "output_tokens_details": {"image_tokens": 6_000, "text_tokens": 200}}
    assert OPENAI.usage_from_json({**answer, "usage": split}) == Usage(
        input_tokens=5_000, output_tokens=6_200, input_image_tokens=4_980, output_image_tokens=6_000
    )


def test_openai_responses_count_web_search_calls() -> None:
    response = {
        "object": "response",
        "output": [
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "web_search_call", "id": "ws_2", "status": "completed"},
            {"type": "message", "content": []},
        ],
        "usage": {
            "input_tokens": 900,
            "output_tokens": 100,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 10},
        },
    }
    expected = Usage(input_tokens=900, output_tokens=100, web_searches=2)
    assert OPENAI.usage_from_json(response) == expected
    completed = {"type": "response.completed", "response": response}
    assert streamed(OPENAI.stream_observer(injected_usage=False), completed) == expected


def test_anthropic_one_hour_cache_writes_and_web_searches() -> None:
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 100_000,
        "cache_read_input_tokens": 50,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 40_000,
            "ephemeral_1h_input_tokens": 60_000,
        },
        "output_tokens": 5,
        "server_tool_use": {"web_search_requests": 3},
    }
    expected = Usage(
        input_tokens=100_060,
        output_tokens=5,
        cached_tokens=50,
        cache_write_tokens=100_000,
        cache_write_1h_tokens=60_000,
        web_searches=3,
    )
    assert ANTHROPIC.usage_from_json({"type": "message", "usage": usage}) == expected
    start = {"type": "message_start", "message": {"usage": {**usage, "output_tokens": 1}}}
    start["message"]["usage"].pop("server_tool_use")
    delta = {
        "type": "message_delta",
        "usage": {"output_tokens": 5, "server_tool_use": {"web_search_requests": 3}},
    }
    assert streamed(ANTHROPIC.stream_observer(injected_usage=False), start, delta) == expected


GEMINI_IMAGE = {
    "promptTokenCount": 1_300,
    "cachedContentTokenCount": 1_000,
    "candidatesTokenCount": 1_130,
    "thoughtsTokenCount": 70,
    "promptTokensDetails": [
        {"modality": "TEXT", "tokenCount": 40},
        {"modality": "AUDIO", "tokenCount": 1_000},
        {"modality": "IMAGE", "tokenCount": 258},
        {"modality": "VIDEO", "tokenCount": 2},
    ],
    "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 1_000}],
    "candidatesTokensDetails": [
        {"modality": "IMAGE", "tokenCount": 1_120},
        {"modality": "TEXT", "tokenCount": 10},
    ],
}
GEMINI_EXPECTED = Usage(
    input_tokens=1_300,
    output_tokens=1_200,
    cached_tokens=1_000,
    input_audio_tokens=1_000,
    input_image_tokens=258,
    input_video_tokens=2,
    cached_audio_tokens=1_000,
    output_image_tokens=1_120,
)


def test_google_modalities_from_json_sse_and_a_json_array_stream() -> None:
    assert GOOGLE.usage_from_json({"usageMetadata": GEMINI_IMAGE}) == GEMINI_EXPECTED
    first = {"candidates": [{"content": {}}], "usageMetadata": {"promptTokenCount": 1_300}}
    last = {"candidates": [{"finishReason": "STOP"}], "usageMetadata": GEMINI_IMAGE}
    assert streamed(GOOGLE.stream_observer(injected_usage=False), first, last) == GEMINI_EXPECTED
    observer = GOOGLE.stream_observer(injected_usage=False)
    observer.observe_tail(("[" + json.dumps(first) + ",\r\n" + json.dumps(last) + "]").encode())
    assert observer.complete and observer.usage == GEMINI_EXPECTED
    cut = GOOGLE.stream_observer(injected_usage=False)
    cut.observe_tail(b'"usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3, "pro')
    assert cut.usage == Usage(input_tokens=7, output_tokens=3)


def test_inconsistent_reports_are_raised_to_add_up_never_lowered() -> None:
    odd = Usage(input_tokens=10, output_tokens=5, input_audio_tokens=50, output_image_tokens=9)
    assert odd.consistent() == Usage(
        input_tokens=50, output_tokens=9, input_audio_tokens=50, output_image_tokens=9
    )
    assert Usage(input_tokens=3, cache_write_1h_tokens=8).consistent().cache_write_tokens == 8
    assert Usage.from_counts([1, 2]) == Usage(1, 2)
    assert Usage.from_counts([*Usage(1, 2, web_searches=4).counts(), 99]).web_searches == 4


def test_an_openai_search_preview_answer_is_one_search() -> None:
    """The search-preview chat models search on every call; their usage does not say so."""
    usage = {"prompt_tokens": 20, "completion_tokens": 80}
    answer = {"model": "gpt-4o-mini-search-preview-2025-03-11", "usage": usage}
    assert OPENAI.usage_from_json(answer) == Usage(20, 80, web_searches=1)
    chunk = {"model": answer["model"], "choices": [], "usage": usage}
    assert streamed(OPENAI.stream_observer(injected_usage=True), chunk).web_searches == 1
    assert OPENAI.usage_from_json({**answer, "model": "gpt-4o-mini"}) == Usage(20, 80)


def test_an_openai_transcription_bills_its_audio_input() -> None:
    usage = {
        "type": "tokens",
        "input_tokens": 14,
        "input_token_details": {"text_tokens": 0, "audio_tokens": 14},
        "output_tokens": 45,
        "total_tokens": 59,
    }
    assert OPENAI.usage_from_json({"text": "hi", "usage": usage}) == Usage(
        14, 45, input_audio_tokens=14
    )


def test_unsplit_cached_media_tokens_are_counted_as_cached_media() -> None:
    """OpenAI chat reports cached and audio tokens apart: 400 input tokens, 300 of them
    audio, 350 cached cannot add up unless 250 cached tokens are audio."""
    report = Usage(input_tokens=400, output_tokens=1, cached_tokens=350, input_audio_tokens=300)
    assert report.consistent() == Usage(
        input_tokens=400,
        output_tokens=1,
        cached_tokens=350,
        input_audio_tokens=300,
        cached_audio_tokens=250,
    )
