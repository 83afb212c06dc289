"""The Gemini route table, both spellings of a field, and what a request asks."""

from __future__ import annotations

from typing import Any

import pytest

from okap_server.proxy.ijson import read_object
from okap_server.proxy.providers.base import AmbiguousMember
from okap_server.proxy.providers.google import GoogleAdapter

GOOGLE = GoogleAdapter("google")
GENERATE = "v1beta/models/gemini-2.5-flash:generateContent"


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", GENERATE, ("chat", True, False)),
        ("POST", "v1beta/models/gemini-2.5-flash:countTokens", ("chat", False, False)),
        ("POST", "v1beta/models/gemini-embedding-001:embedContent", ("embeddings", True, False)),
        ("POST", "v1beta/models/gemini-2.5-flash:batchGenerateContent", ("batch", False, True)),
        ("POST", "v1beta/models/imagen-4.0-generate-001:predict", ("images", False, True)),
        ("POST", "v1beta/models/veo-3.0-generate-001:predictLongRunning", ("images", False, True)),
        ("POST", "v1beta/cachedContents", ("chat", False, True)),
        ("PATCH", "v1beta/cachedContents/c1", ("chat", False, True)),
        ("GET", "v1beta/cachedContents", ("chat", False, False)),
        ("DELETE", "v1beta/cachedContents/c1", ("chat", False, False)),
        ("GET", "v1beta/batches/b1", ("batch", False, False)),
        ("POST", "v1beta/batches/b1:cancel", ("batch", False, False)),
        ("POST", "upload/v1beta/files", ("files", False, False)),
        ("POST", "v1beta/tunedModels/t:generateContent", (None, False, False)),
    ],
)
def test_every_route_is_free_priced_or_refused_under_a_spend_limit(
    method: str, path: str, expected: tuple[str | None, bool, bool]
) -> None:
    route = GOOGLE.route(method, path, {})
    assert (route.capability, route.billable, route.unbounded is not None) == expected


def test_cached_contents_and_batches_name_their_models() -> None:
    cache = GOOGLE.route("POST", "v1beta/cachedContents", {"model": "models/gemini-2.5-pro"})
    assert cache.model == "gemini-2.5-pro"
    body = read_object(
        b'{"batch": {"input_config": {"requests": {"requests": '
        b'[{"request": {"model": "models/gemini-2.5-pro", "contents": []}}]}}}}'
    )
    batch = GOOGLE.route("POST", "v1beta/models/gemini-2.5-flash:batchGenerateContent", body)
    assert batch.model == "gemini-2.5-flash" and batch.models == ("gemini-2.5-pro",)


def test_candidates_cache_and_tools() -> None:
    route = GOOGLE.route("POST", GENERATE, {})
    assert GOOGLE.demand(route, {"generationConfig": {"candidateCount": 8}}).answers == 8
    assert GOOGLE.demand(route, {"generation_config": {"candidate_count": "4"}}).answers == 4
    assert GOOGLE.demand(route, {"cached_content": "cachedContents/x"}).references == [
        "cachedContent"
    ]
    functions = {"tools": [{"functionDeclarations": [{"name": "f"}]}]}
    assert GOOGLE.demand(route, functions).unbounded is None
    search = GOOGLE.demand(route, {"tools": [{"googleSearch": {}}]})
    assert search.unbounded and "googleSearch" in search.unbounded
    with pytest.raises(AmbiguousMember):
        GOOGLE.demand(route, {"generationConfig": {"candidateCount": 1, "candidate_count": 8}})


def test_the_output_cap_is_set_under_the_spelling_the_body_uses() -> None:
    route = GOOGLE.route("POST", GENERATE, {})
    snake: dict[str, Any] = {"generation_config": {"max_output_tokens": 900_000}}
    assert GOOGLE.requested_max_output(route, snake) == 900_000
    GOOGLE.set_max_output(route, snake, 50)
    assert snake == {"generation_config": {"max_output_tokens": 50}}
    bare: dict[str, Any] = {}
    GOOGLE.set_max_output(route, bare, 50)
    assert bare == {"generationConfig": {"maxOutputTokens": 50}}
    with pytest.raises(AmbiguousMember):
        GOOGLE.requested_max_output(route, {"generationConfig": {}, "generation_config": {}})
