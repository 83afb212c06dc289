"""Each API family's usage report read into a :class:`Usage`, with every count a provider
bills at its own rate: modality tokens, one-hour cache writes, web searches.

Kept apart from the adapters (which read requests) so a family's whole usage reading is in
one place; the adapters' JSON readers and stream observers call these.
"""

from __future__ import annotations

import json
from typing import Any

from okap_server.prices.usage import MODALITY_FIELDS, Usage


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    """A reported count; anything else (a string, a negative number) counts as none."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_openai(
    usage: Any, *, images: bool = False, output: Any = None, model: Any = None
) -> Usage | None:
    """Chat/completions/embeddings name tokens ``prompt_``/``completion_``; the Responses
    API and images name them ``input_``/``output_``. Audio tokens (chat with ``audio``,
    transcriptions) and image tokens (gpt-image edits) are in the details. An images
    answer (``images``) that does not split its output bills it all as image tokens
    (gpt-image-1 reports no split). ``output``: a Responses answer's output items, whose
    ``web_search_call`` items are each a billed search. ``model``: the answer's; a
    ``*-search-preview`` chat model searches on every call, billed as one search (its
    usage does not count it)."""
    if not isinstance(usage, dict):
        return None
    prompt = _object(
        usage.get("prompt_tokens_details")
        or usage.get("input_tokens_details")
        or usage.get("input_token_details")  # audio transcriptions
    )
    completion = usage.get("completion_tokens_details") or usage.get("output_tokens_details")
    cached_split = _object(prompt.get("cached_tokens_details"))
    output_tokens = _count(usage.get("completion_tokens", usage.get("output_tokens")))
    output_image = _count(_object(completion).get("image_tokens"))
    if images and not isinstance(completion, dict):
        output_image = output_tokens
    searches = 1 if isinstance(model, str) and "-search-preview" in model else 0
    if isinstance(output, list):
        searches += sum(
            1 for item in output if isinstance(item, dict) and item.get("type") == "web_search_call"
        )
    return Usage(
        input_tokens=_count(usage.get("prompt_tokens", usage.get("input_tokens"))),
        output_tokens=output_tokens,
        cached_tokens=_count(prompt.get("cached_tokens")),
        input_audio_tokens=_count(prompt.get("audio_tokens")),
        input_image_tokens=_count(prompt.get("image_tokens")),
        cached_audio_tokens=_count(cached_split.get("audio_tokens")),
        cached_image_tokens=_count(cached_split.get("image_tokens")),
        output_audio_tokens=_count(_object(completion).get("audio_tokens")),
        output_image_tokens=output_image,
        web_searches=searches,
    )


def usage_from_anthropic(usage: Any) -> Usage | None:
    """Anthropic counts cache reads and writes apart from ``input_tokens``; fold them in.
    ``cache_creation`` splits the writes by lifetime (one-hour writes cost 2x input, five-
    minute ones 1.25x); ``server_tool_use`` counts the web searches billed per search."""
    if not isinstance(usage, dict):
        return None
    cached = _count(usage.get("cache_read_input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens"))
    lifetimes = _object(usage.get("cache_creation"))
    hour = _count(lifetimes.get("ephemeral_1h_input_tokens"))
    written = max(written, hour + _count(lifetimes.get("ephemeral_5m_input_tokens")))
    server = _object(usage.get("server_tool_use"))
    return Usage(
        input_tokens=_count(usage.get("input_tokens")) + cached + written,
        output_tokens=_count(usage.get("output_tokens")),
        cached_tokens=cached,
        cache_write_tokens=written,
        cache_write_1h_tokens=hour,
        web_searches=_count(server.get("web_search_requests")),
    )


def usage_from_google(meta: Any) -> Usage | None:
    """Thinking tokens are billed as output; tool-use prompt tokens as input. The
    ``*TokensDetails`` lists split each count by modality (``AUDIO``, ``IMAGE``, ``VIDEO``
    are billed at their own rates; ``TEXT`` and ``DOCUMENT`` as text).

    None unless both the input and the output count are known (given, or derived from
    ``totalTokenCount``; Gemini leaves a zero count out): an answer cut down by a field
    mask, or a partial one, is not a complete account, so it is settled at the hold."""
    if not isinstance(meta, dict):
        return None
    prompt, output, total = (
        meta.get(name) for name in ("promptTokenCount", "candidatesTokenCount", "totalTokenCount")
    )
    extra_in = _count(meta.get("toolUsePromptTokenCount"))
    thoughts = _count(meta.get("thoughtsTokenCount"))
    if output is None and prompt is not None and total is not None:
        output = max(_count(total) - _count(prompt) - extra_in - thoughts, 0)
    elif prompt is None and output is not None and total is not None:
        prompt = max(_count(total) - _count(output) - extra_in - thoughts, 0)
    if prompt is None or output is None:
        return None
    counts: dict[str, int] = {}
    for key, slot in (
        ("promptTokensDetails", 0),
        ("toolUsePromptTokensDetails", 0),
        ("cacheTokensDetails", 1),
        ("candidatesTokensDetails", 2),
    ):
        details = meta.get(key)
        for item in details if isinstance(details, list) else ():
            if not isinstance(item, dict):
                continue
            modality = item.get("modality")
            fields = MODALITY_FIELDS.get(modality.lower()) if isinstance(modality, str) else None
            if fields is not None:
                name = fields[slot]
                counts[name] = counts.get(name, 0) + _count(item.get("tokenCount"))
    return Usage(
        input_tokens=_count(prompt) + extra_in,
        output_tokens=_count(output) + thoughts,
        cached_tokens=_count(meta.get("cachedContentTokenCount")),
        **counts,
    )


def last_usage_metadata(tail: bytes) -> dict[str, Any] | None:
    """The last whole ``usageMetadata`` object in the tail of a Gemini stream sent as one
    JSON array (no ``alt=sse``); None if the tail does not hold one whole."""
    at = tail.rfind(b'"usageMetadata"')
    start = tail.find(b"{", at) if at >= 0 else -1
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(tail[start:].decode("utf-8", "replace"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
