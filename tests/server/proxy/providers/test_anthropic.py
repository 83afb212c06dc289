"""The Anthropic route table and what a request asks beyond its bytes."""

from __future__ import annotations

from typing import Any

import pytest

from okap_server.proxy.providers.anthropic import (
    DEFINED_TOOL_TOKENS,
    TOOL_USE_TOKENS,
    AnthropicAdapter,
)

ANTHROPIC = AnthropicAdapter("anthropic")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "v1/messages", ("chat", True, False)),
        ("POST", "v1/messages/count_tokens", ("chat", False, False)),
        ("POST", "v1/messages/batches", ("batch", False, True)),
        ("POST", "v1/messages/batches/b1/cancel", ("batch", False, False)),
        ("GET", "v1/messages/batches/b1/results", ("batch", False, False)),
        ("DELETE", "v1/messages/batches/b1", ("batch", False, False)),
        ("POST", "v1/complete", ("completions", True, False)),
        ("POST", "v1/files", ("files", False, False)),
        ("GET", "v1/models", (None, False, False)),
        ("POST", "v1/skills", (None, False, False)),
    ],
)
def test_every_route_is_free_priced_or_refused_under_a_spend_limit(
    method: str, path: str, expected: tuple[str | None, bool, bool]
) -> None:
    route = ANTHROPIC.route(method, path, {"model": "m"})
    assert (route.capability, route.billable, route.unbounded is not None) == expected


def test_a_batch_names_every_model_of_its_requests() -> None:
    item: dict[str, Any] = {"custom_id": "a", "params": {"model": "claude-opus-4-1"}}
    route = ANTHROPIC.route("POST", "v1/messages/batches", {"requests": [item, item]})
    assert route.models == ("claude-opus-4-1",) and not route.models_unseen
    nameless = ANTHROPIC.route("POST", "v1/messages/batches", {"requests": [{"params": {}}]})
    assert nameless.models_unseen


def test_tools_add_their_prompts_and_server_tools_are_unbounded() -> None:
    route = ANTHROPIC.route("POST", "v1/messages", {})
    custom = ANTHROPIC.demand(route, {"tools": [{"name": "f", "input_schema": {}}]})
    assert custom.extra_input == TOOL_USE_TOKENS and custom.unbounded is None
    computer = ANTHROPIC.demand(route, {"tools": [{"type": "computer_20250124", "name": "c"}]})
    assert computer.extra_input == TOOL_USE_TOKENS + DEFINED_TOOL_TOKENS
    search = ANTHROPIC.demand(route, {"tools": [{"type": "web_search_20250305"}]})
    assert search.unbounded and "web_search" in search.unbounded
    assert ANTHROPIC.demand(route, {"mcp_servers": [{"url": "https://m"}]}).unbounded
