"""The OpenAI family's route table and what a request asks beyond its bytes."""

from __future__ import annotations

from typing import Any

import pytest

from okap_server.proxy.providers.base import AmbiguousMember
from okap_server.proxy.providers.openai import IMAGE_OUTPUT_TOKENS, OpenAIAdapter

OPENAI = OpenAIAdapter("openai")

# (method, path) → (capability, priced, refused under a spend limit)
ROUTES: list[tuple[str, str, tuple[str | None, bool, bool]]] = [
    ("POST", "chat/completions", ("chat", True, False)),
    ("GET", "chat/completions", ("chat", False, False)),
    ("POST", "chat/completions/cmpl_1", ("chat", False, False)),  # metadata update
    ("DELETE", "chat/completions/cmpl_1", ("chat", False, False)),
    ("POST", "responses", ("chat", True, False)),
    ("POST", "responses/input_tokens", ("chat", False, False)),
    ("POST", "responses/resp_1/cancel", ("chat", False, False)),
    ("POST", "responses/compact", ("chat", False, True)),  # runs a model, unpriced
    ("GET", "responses/resp_1", ("chat", False, False)),
    ("POST", "completions", ("completions", True, False)),
    ("POST", "fim/completions", ("completions", True, False)),
    ("POST", "embeddings", ("embeddings", True, False)),
    ("POST", "images/generations", ("images", True, False)),
    ("POST", "images/edits", ("images", True, False)),
    ("POST", "audio/speech", ("audio", False, True)),
    ("POST", "audio/transcriptions", ("audio", False, True)),
    ("POST", "moderations", ("moderation", False, False)),  # free at OpenAI
    ("POST", "files", ("files", False, False)),
    ("POST", "uploads/up_1/parts", ("files", False, False)),
    ("POST", "batches", ("batch", False, True)),
    ("POST", "batches/batch_1/cancel", ("batch", False, False)),
    ("GET", "batches", ("batch", False, False)),
    ("POST", "fine_tuning/jobs", (None, False, False)),
]


@pytest.mark.parametrize(("method", "path", "expected"), ROUTES)
def test_every_route_is_free_priced_or_refused_under_a_spend_limit(
    method: str, path: str, expected: tuple[str | None, bool, bool]
) -> None:
    route = OPENAI.route(method, path, {"model": "m"})
    assert (route.capability, route.billable, route.unbounded is not None) == expected


def test_moderations_are_priced_where_the_provider_bills_them() -> None:
    assert OpenAIAdapter("mistral").route("POST", "moderations", {"model": "m"}).billable


def test_a_batch_names_its_models_in_a_file_the_vault_does_not_read() -> None:
    assert OPENAI.route("POST", "batches", {"input_file_id": "f"}).models_unseen
    assert not OPENAI.route("GET", "batches", None).models_unseen


def demand(path: str, body: dict[str, Any], **route: Any) -> Any:
    return OPENAI.demand(OPENAI.route("POST", path, body), body)


def test_every_answer_is_counted() -> None:
    assert demand("chat/completions", {"n": 128}).answers == 128
    assert demand("chat/completions", {"n": "8"}).answers == 8  # a lax reader's integer
    assert demand("chat/completions", {"n": None}).answers == 1
    assert demand("completions", {"n": 2, "best_of": 5}).answers == 5
    assert demand("completions", {"best_of": 5, "prompt": ["a", "b", "c"]}).answers == 15
    assert demand("completions", {"prompt": [1, 2, 3]}).answers == 1  # one tokenised prompt
    assert demand("completions", {"prompt": [[1], [2]]}).answers == 2
    images = demand("images/generations", {"model": "gpt-image-1", "n": 4})
    assert (images.answers, images.output_each) == (4, IMAGE_OUTPUT_TOKENS)
    with pytest.raises(AmbiguousMember):
        demand("chat/completions", {"n": "lots"})
    with pytest.raises(AmbiguousMember):
        demand("chat/completions", {"n": 2**60})  # beyond a double's exact integers


def test_references_and_unbounded_features() -> None:
    assert demand("responses", {"previous_response_id": "r"}).references == ["previous_response_id"]
    assert demand("responses", {"conversation": {"id": "c"}}).references == ["conversation"]
    assert demand("responses", {"prompt": {"id": "p"}}).references == ["prompt"]
    assert demand("completions", {"prompt": "text"}).references == []
    assert demand("responses", {"tools": [{"type": "function", "name": "f"}]}).unbounded is None
    assert "web_search" in (
        demand("responses", {"tools": [{"type": "web_search"}]}).unbounded or ""
    )
    assert demand("chat/completions", {"web_search_options": {}}).unbounded
    assert demand("chat/completions", {"service_tier": "priority"}).unbounded
    assert demand("chat/completions", {"service_tier": "flex"}).unbounded is None
    assert demand("chat/completions", {"prediction": {"content": "x" * 100}}).extra_output > 100


def test_the_output_cap_is_read_and_set_in_every_field() -> None:
    route = OPENAI.route("POST", "chat/completions", {})
    assert OPENAI.requested_max_output(route, {"max_completion_tokens": 5, "max_tokens": 9}) == 9
    assert OPENAI.requested_max_output(route, {"max_tokens": 0}) is None
    assert OPENAI.requested_max_output(route, {"max_tokens": "lots"}) is None
    body: dict[str, Any] = {"max_completion_tokens": 5, "max_tokens": 900_000}
    OPENAI.set_max_output(route, body, 50)
    assert body == {"max_completion_tokens": 5, "max_tokens": 50}
    empty: dict[str, Any] = {}
    OPENAI.set_max_output(route, empty, 50)
    assert empty == {"max_completion_tokens": 50}


def test_names_a_lenient_reader_would_take_for_a_watched_one_are_refused() -> None:
    for body in ({"Model": "x"}, {"model": "a", "MODEL": "b"}, {"maxTokens": 5}):
        with pytest.raises(AmbiguousMember):
            OPENAI.route("POST", "chat/completions", body)
    # Names the vault does not act on are the provider's business.
    OPENAI.route("POST", "chat/completions", {"model": "m", "Metadata": {}, "USER": "u"})
