"""The fake upstream's Anthropic Messages answers: JSON and server-sent events with usage."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from tests.support.fake_answers import (
    TEXT_PIECES,
    Behaviour,
    FakeUsage,
    sse,
)


def anthropic_answer(
    path: str,
    body: dict[str, Any],
    usage: FakeUsage,
    behaviour: Behaviour | None,
) -> Response:
    """What the fake anthropic API answers to one request."""
    model = body.get("model", "claude-sonnet-4-5")
    if path == "v1/models":
        return JSONResponse(
            {
                "data": [
                    {
                        "type": "model",
                        "id": "claude-sonnet-4-5",
                        "display_name": "Claude Sonnet 4.5",
                        "created_at": "2025-09-29T00:00:00Z",
                    }
                ],
                "has_more": False,
                "first_id": "claude-sonnet-4-5",
                "last_id": "claude-sonnet-4-5",
            }
        )
    if path == "v1/messages/count_tokens":
        return JSONResponse({"input_tokens": usage.input})
    if path != "v1/messages":
        return JSONResponse(
            {"type": "error", "error": {"type": "not_found_error", "message": "no such path"}},
            status_code=404,
        )
    plain = usage.input - usage.cached
    output = usage.each(body.get("max_tokens"))
    message: dict[str, Any] = {
        "id": "msg_fake1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "".join(TEXT_PIECES)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": plain,
            "output_tokens": output,
            "cache_read_input_tokens": usage.cached,
            "cache_creation_input_tokens": 0,
            **usage.details,
        },
    }
    if not body.get("stream"):
        return JSONResponse(message)
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    events += [
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
        )
        for piece in TEXT_PIECES
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output, **usage.details},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return sse(events, behaviour)
