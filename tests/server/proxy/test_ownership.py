"""The route rows that say which stored objects a request lists, uses or creates."""

from __future__ import annotations

import pytest

from okap_server.proxy.providers.anthropic import AnthropicAdapter
from okap_server.proxy.providers.base import Adapter
from okap_server.proxy.providers.google import GoogleAdapter
from okap_server.proxy.providers.openai import OpenAIAdapter


@pytest.mark.parametrize(
    "adapter", [OpenAIAdapter("openai"), AnthropicAdapter("anthropic"), GoogleAdapter("google")]
)
def test_every_reference_key_is_found_by_the_byte_scan(adapter: Adapter) -> None:
    """The scan that rules a body out before any walk must catch every key it walks for."""
    for key in (*adapter.reference_keys, *adapter.reference_types):
        assert any(needle in key.encode() for needle in adapter.reference_needles), key


def test_openai_collections() -> None:
    openai = OpenAIAdapter("openai")
    assert openai.route("GET", "chat/completions", None).listing
    audio = "choices.*.message.audio.id"  # an audio answer is kept for the next turn
    assert openai.route("POST", "chat/completions", {"model": "m"}).owns == (audio,)
    assert openai.route("POST", "chat/completions", {"store": True}).owns == ("id", audio)
    items = ("output.*.id", "output.*.container_id")  # owned stored or not
    assert openai.route("POST", "responses", {}).owns == ("id", *items)
    assert openai.route("POST", "responses", {"store": False}).owns == items
    assert openai.route("POST", "responses/input_tokens", {}).object_id is None
    assert openai.route("GET", "responses/resp_1/input_items", None).object_id == "resp_1"
    assert openai.route("DELETE", "chat/completions/c1", None).object_id == "c1"
    assert openai.route("GET", "files/file-1/content", None).object_id == "file-1"
    assert openai.route("GET", "files", None).listing
    batch = openai.route("GET", "batches/batch_1", None)
    assert batch.object_id == "batch_1" and "output_file_id" in batch.owns
    assert openai.route("POST", "uploads/u1/complete", {}).owns == ("id", "file.id")
    assert OpenAIAdapter("groq").route("GET", "files", None).listing  # every compatible row
    for open_path in ("embeddings", "images/generations", "moderations", "chat/completionsX"):
        route = openai.route("POST", open_path, {})
        assert (route.listing, route.object_id, route.owns) == (False, None, ())
    body = {
        "previous_response_id": "resp_1",
        "conversation": {"id": "conv_1"},
        "input": [{"content": [{"type": "input_file", "file_id": "file-1"}]}],
        "tools": [{"type": "file_search", "vector_store_ids": ["vs_1", "vs_2"]}],
    }
    assert sorted(openai.references(body)) == ["conv_1", "file-1", "resp_1", "vs_1", "vs_2"]


def test_anthropic_and_gemini_collections() -> None:
    anthropic = AnthropicAdapter("anthropic")
    assert anthropic.route("GET", "v1/messages/batches", None).listing
    assert anthropic.route("GET", "v1/messages/batches/b1/results", None).object_id == "b1"
    assert anthropic.route("POST", "v1/files", {}).owns == ("id",)
    assert anthropic.route("POST", "v1/messages", {}).owns == ("container.id",)
    google = GoogleAdapter("google")
    assert google.route("GET", "v1beta/files", None).listing
    assert google.route("GET", "v1beta/files/abc", None).object_id == "files/abc"
    assert google.route("POST", "v1beta/batches/b1:cancel", None).object_id == "batches/b1"
    assert google.route("POST", "upload/v1beta/files", {}).owns == ("name", "file.name")
    assert google.route("POST", "v1beta/models/m:batchGenerateContent", {}).owns == ("name",)
    assert google.route("PATCH", "v1beta/cachedContents/c1", {}).object_id == "cachedContents/c1"
    assert google.object_name("https://generativelanguage.googleapis.com/v1beta/files/x") == (
        "files/x"
    )
    assert google.object_name("https://www.youtube.com/watch?v=x") is None
    assert google.object_name("gs://bucket/thing") is None
