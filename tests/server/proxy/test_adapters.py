"""Unit tests of one adapter at a time (respx stands in for the network here only)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import respx

from okap_server.proxy.providers.anthropic import AnthropicAdapter
from okap_server.proxy.providers.google import GoogleAdapter
from okap_server.proxy.providers.openai import OpenAIAdapter
from okap_server.proxy.relay import Relay, split_events
from okap_server.proxy.upstream import UpstreamPool
from okap_server.settings import Settings


def test_openai_routes_map_to_capabilities() -> None:
    adapter = OpenAIAdapter("openai")
    chat = adapter.route("POST", "chat/completions", {"model": "gpt-4o", "stream": True})
    assert (chat.capability, chat.model, chat.billable, chat.stream) == (
        "chat",
        "gpt-4o",
        True,
        True,
    )
    assert adapter.route("POST", "embeddings", {"model": "m"}).capability == "embeddings"
    assert adapter.route("POST", "images/generations", {}).capability == "images"
    assert adapter.route("POST", "audio/transcriptions", {}).capability == "audio"
    assert adapter.route("POST", "moderations", {}).billable is False
    assert adapter.route("GET", "models", None).always_allowed
    assert adapter.route("GET", "responses/resp_1", None).billable is False
    assert adapter.route("POST", "fine_tuning/jobs", {}).capability is None
    assert (
        OpenAIAdapter("groq").route("POST", "chat/completions", {}).max_output_fields[0]
        == "max_tokens"
    )


def test_google_routes_take_the_model_from_the_path() -> None:
    adapter = GoogleAdapter("google")
    route = adapter.route("POST", "v1beta/models/gemini-2.5-flash:streamGenerateContent", None)
    assert (route.capability, route.model, route.stream) == ("chat", "gemini-2.5-flash", True)
    assert adapter.route("POST", "v1/models/x:batchEmbedContents", {}).capability == "embeddings"
    assert adapter.route("POST", "v1alpha/models/x:countTokens", {}).billable is False
    assert adapter.route("GET", "v1beta/models", None).always_allowed
    assert adapter.route("POST", "notaversion/models/x:generateContent", {}).capability is None
    assert adapter.client_token({}, {"key": "okap_q"}) == "okap_q"


def test_anthropic_stream_usage_from_start_and_delta() -> None:
    observer = AnthropicAdapter("anthropic").stream_observer(injected_usage=False)
    observer.observe(
        json.dumps(
            {
                "type": "message_start",
                "message": {
                    "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}
                },
            }
        ).encode()
    )
    observer.observe(b'{"type": "message_delta", "usage": {"output_tokens": 42}}')
    observer.observe(b'{"type": "message_stop"}')
    assert observer.complete and observer.usage is not None
    assert (observer.usage.input_tokens, observer.usage.cached_tokens) == (15, 5)
    assert observer.usage.output_tokens == 42


def test_split_events_handles_both_line_endings() -> None:
    events, rest = split_events(b"data: 1\n\ndata: 2\r\n\r\ndata: 3")
    assert events == [b"data: 1\n\n", b"data: 2\r\n\r\n"] and rest == b"data: 3"


@respx.mock
def test_openai_relay_drops_only_the_injected_usage_chunk() -> None:
    body = (
        b'data: {"choices": [{"delta": {"content": "hi"}}], "usage": null}\n\n'
        b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}\n\n'
        b"data: [DONE]\n\n"
    )
    respx.post("https://api.openai.com/v1/chat/completions").mock(
        return_value=httpx.Response(
            200, content=body, headers={"content-type": "text/event-stream"}
        )
    )
    finished: list[str] = []

    async def run() -> bytes:
        pool = UpstreamPool(Settings(), transport=httpx.AsyncHTTPTransport())
        request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
        response = await pool.send(request)
        observer = OpenAIAdapter("openai").stream_observer(injected_usage=True)
        out = b"".join(
            [
                c
                async for c in Relay(
                    response, observer, sse=True, finish=lambda seen, how: finished.append(how)
                )
            ]
        )
        await pool.aclose()
        assert observer.usage is not None and observer.usage.output_tokens == 4
        return out

    out = asyncio.run(run())
    assert b'"usage": {' not in out and b"[DONE]" in out and b'"hi"' in out
    assert finished == ["complete"]


def test_a_relay_the_app_never_read_still_settles_once() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"data: 1\n\n"))
    finished: list[str] = []

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.send(httpx.Request("GET", "https://x.test/"), stream=True)
            observer = OpenAIAdapter("openai").stream_observer(injected_usage=False)
            relayed = Relay(
                response, observer, sse=True, finish=lambda s, how: finished.append(how)
            )
            await relayed.aclose()
            await relayed.aclose()
            return response

    assert asyncio.run(run()).is_closed
    assert finished == ["client_gone"]


def test_stream_usage_is_asked_for_only_where_the_row_says_so() -> None:
    from okap_server.catalog import BUILTIN_PROVIDERS
    from okap_server.proxy.providers.registry import adapter_for

    rows = {row.id: row for row in BUILTIN_PROVIDERS}
    asked = {"model": "m", "messages": [], "stream": True}
    assert adapter_for(rows["groq"]).prepare_stream(asked)
    assert asked["stream_options"] == {"include_usage": True}
    left = {"model": "m", "messages": [], "stream": True}
    assert not adapter_for(rows["mistral"]).prepare_stream(left)
    assert "stream_options" not in left


def test_the_token_is_found_wherever_a_released_sdk_puts_it() -> None:
    anthropic = AnthropicAdapter("anthropic")
    assert anthropic.client_token({"x-api-key": "okap_a"}, {}) == "okap_a"
    assert anthropic.client_token({"authorization": "Bearer okap_b"}, {}) == "okap_b"
    both = {"x-api-key": "placeholder", "authorization": "Bearer okap_c"}
    assert anthropic.client_token(both, {}) == "okap_c"
    google = GoogleAdapter("google")
    assert google.client_token({"x-goog-api-key": "okap_d"}, {}) == "okap_d"
    assert google.client_token({}, {"key": "okap_e"}) == "okap_e"
    assert OpenAIAdapter("openai").client_token({"authorization": "bearer okap_f"}, {}) == "okap_f"
    assert OpenAIAdapter("openai").client_token({}, {}) is None


def test_the_grant_cache_loads_once_for_many_waiters_and_forgets_on_revoke() -> None:
    import threading

    from okap_server.grants.view import GrantView
    from okap_server.proxy.grant_cache import GrantCache

    loads: list[str] = []
    gate = threading.Event()

    def load(hashed: str) -> GrantView | None:
        loads.append(hashed)
        gate.wait(5)
        return GrantView("grt_1", "acc_1", "App", datetime.now(UTC), False, {})

    cache = GrantCache(load, ttl_seconds=60)

    async def run() -> list[GrantView | None]:
        waiting = [asyncio.ensure_future(cache.lookup("h")) for _ in range(20)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*waiting)

    views = asyncio.run(run())
    assert loads == ["h"] and all(v is views[0] for v in views)
    assert asyncio.run(cache.lookup("h")) is views[0]  # cached
    cache.invalidate("grt_1")
    asyncio.run(cache.lookup("h"))
    assert loads == ["h", "h"]
