"""The answers of the fake upstream: realistic OpenAI, Anthropic and Gemini JSON and
server-sent events with usage, shaped by scripted behaviours (see ``fake_upstream``)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse

TEXT_PIECES = ("Hello", " from", " the", " fake", " upstream.")
# What ``GET /openai/v1/files/{id}/content`` answers: 3 MiB of bytes that are not JSON.
FILE_CONTENT = bytes(range(256)) * (3 * 4096)


@dataclass(frozen=True)
class FakeUsage:
    """What the fake reports: input (including cached) and output tokens of each answer.

    Like the real APIs it bills every answer it generates: ``n`` chat choices, ``best_of``
    completions for each prompt, Gemini's ``candidateCount``, ``n`` images. ``output=None``
    bills each answer at the request's own output cap, as a model that never stops early
    would (the worst case a vault must hold)."""

    input: int = 12
    output: int | None = 5
    cached: int = 0
    # Further members of every usage report, as the provider names them (Gemini's
    # ``candidatesTokensDetails``, Anthropic's ``cache_creation``): test_modality_prices.py.
    details: dict[str, Any] = field(default_factory=dict)

    def each(self, cap: Any, fallback: int = 4096) -> int:
        if self.output is not None:
            return self.output
        return cap if isinstance(cap, int) and not isinstance(cap, bool) else fallback


def answers_of(body: dict[str, Any], *names: str) -> int:
    """How many answers a request asks for: the largest of the named multipliers."""
    counts = [body.get(name) for name in names]
    return max([1, *(int(c) for c in counts if isinstance(c, int | float))])


# The output tokens of one gpt-image-1 image at high quality, 1024x1536.
IMAGE_TOKENS = 6_240


@dataclass(frozen=True)
class Respond:
    """Answer with this status (an error body in the provider's shape unless 2xx)."""

    status: int
    retry_after: str | None = None
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class BreakStream:
    """Stream this many events, then cut the connection."""

    after_events: int = 2


@dataclass(frozen=True)
class SlowStream:
    """Wait this long before each streamed event."""

    delay: float = 0.2


Behaviour = Respond | BreakStream | SlowStream


class CutConnection(Exception):
    """Raised inside a streaming body so the server drops the connection."""


def error_response(provider: str, behaviour: Respond) -> Response:
    status = behaviour.status
    if behaviour.body is not None:
        body = behaviour.body
    elif provider == "anthropic":
        body = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    elif provider == "google":
        body = {"error": {"code": status, "message": "busy", "status": "UNAVAILABLE"}}
    else:
        body = {"error": {"message": "busy", "type": "server_error", "code": None}}
    headers = {"retry-after": behaviour.retry_after} if behaviour.retry_after else {}
    return JSONResponse(body, status_code=status, headers=headers)


def sse(
    events: list[tuple[str | None, dict[str, Any] | str]], behaviour: Behaviour | None
) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for index, (name, data) in enumerate(events):
            if isinstance(behaviour, BreakStream) and index >= behaviour.after_events:
                raise CutConnection()
            if isinstance(behaviour, SlowStream):
                await asyncio.sleep(behaviour.delay)
            text = data if isinstance(data, str) else json.dumps(data)
            prefix = f"event: {name}\n" if name else ""
            yield f"{prefix}data: {text}\n\n".encode()

    return StreamingResponse(body(), media_type="text/event-stream")


def openai_answer(
    path: str,
    body: dict[str, Any],
    usage: FakeUsage,
    behaviour: Behaviour | None,
) -> Response:
    """What the fake openai API answers to one request."""
    model = body.get("model", "gpt-4o-mini")
    if path == "v1/models":
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "openai"}
                ],
            }
        )
    if path.startswith("v1/models/"):
        name = path.removeprefix("v1/models/")
        return JSONResponse({"id": name, "object": "model", "created": 1, "owned_by": "openai"})
    if path.startswith("v1/files/") and path.endswith("/content"):
        return Response(FILE_CONTENT, media_type="application/octet-stream")
    if path == "v1/embeddings":
        inputs = body.get("input")
        count = len(inputs) if isinstance(inputs, list) else 1
        vector = [0.1, 0.2, 0.3]
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack("<3f", *vector)).decode()
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": encoded} for i in range(count)
                ],
                "model": model,
                "usage": {"prompt_tokens": usage.input, "total_tokens": usage.input},
            }
        )
    if path.startswith(("v1/images/", "v1/audio/")):
        return openai_media(path, body, usage)
    if path == "v1/chat/completions":
        return openai_chat(body, model, usage, behaviour)
    if path == "v1/completions":
        return openai_completions(body, model, usage)
    if path == "v1/files" and not body:  # an upload (a form): the stored file
        return JSONResponse(
            {
                "id": "file-fake1",
                "object": "file",
                "bytes": 3,
                "created_at": int(time.time()),
                "filename": "upload.pdf",
                "purpose": "user_data",
            }
        )
    if path == "v1/batches":
        batch = {
            "id": "batch_fake1",
            "object": "batch",
            "endpoint": body.get("endpoint", "/v1/chat/completions"),
            "input_file_id": body.get("input_file_id", "file-fake"),
            "completion_window": "24h",
            "status": "validating",
            "created_at": int(time.time()),
        }
        if not body:  # GET: the list
            return JSONResponse({"object": "list", "data": [batch], "has_more": False})
        return JSONResponse(batch)
    if path == "v1/images/generations":
        count = answers_of(body, "n")
        output = count * (IMAGE_TOKENS if usage.output is None else usage.output)
        return JSONResponse(
            {
                "created": int(time.time()),
                "data": [{"b64_json": base64.b64encode(b"png").decode()}] * count,
                "usage": {
                    "input_tokens": usage.input,
                    "output_tokens": output,
                    "total_tokens": usage.input + output,
                    "input_tokens_details": {"text_tokens": usage.input, "image_tokens": 0},
                },
            }
        )
    if path == "v1/responses":
        return openai_responses(body, model, usage, behaviour)
    return JSONResponse(
        {"error": {"message": "no such path", "type": "invalid_request_error", "code": None}},
        status_code=404,
    )


def openai_usage(usage: FakeUsage, output: int | None = None) -> dict[str, Any]:
    completion = usage.each(None) if output is None else output
    return {
        "prompt_tokens": usage.input,
        "completion_tokens": completion,
        "total_tokens": usage.input + completion,
        "prompt_tokens_details": {"cached_tokens": usage.cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        **usage.details,
    }


def openai_chat(
    body: dict[str, Any], model: str, usage: FakeUsage, behaviour: Behaviour | None
) -> Response:
    created = int(time.time())
    answers = answers_of(body, "n")
    cap = body.get("max_completion_tokens", body.get("max_tokens"))
    billed = answers * usage.each(cap)
    if not body.get("stream"):
        return JSONResponse(
            {
                "id": "chatcmpl-fake1",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": index,
                        "message": {
                            "role": "assistant",
                            "content": "".join(TEXT_PIECES),
                            "refusal": None,
                        },
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                    for index in range(answers)
                ],
                "usage": openai_usage(usage, billed),
                "system_fingerprint": "fp_fake",
            }
        )
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": "chatcmpl-fake1",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None
        return data

    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (None, chunk({"role": "assistant", "content": ""}, None))
    ]
    events += [(None, chunk({"content": piece}, None)) for piece in TEXT_PIECES]
    events.append((None, chunk({}, "stop")))
    if include_usage:
        events.append(
            (
                None,
                {
                    "id": "chatcmpl-fake1",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": openai_usage(usage, billed),
                },
            )
        )
    events.append((None, "[DONE]"))
    return sse(events, behaviour)


def openai_completions(body: dict[str, Any], model: str, usage: FakeUsage) -> Response:
    """The legacy completions API: ``best_of`` answers generated for each prompt of a list
    (``n`` of them returned), each billed."""
    prompt = body.get("prompt")
    prompts = len(prompt) if isinstance(prompt, list) and not isinstance(prompt[0], int) else 1
    returned = answers_of(body, "n")
    generated = answers_of(body, "n", "best_of") * prompts
    billed = generated * usage.each(body.get("max_tokens"), fallback=16)
    return JSONResponse(
        {
            "id": "cmpl-fake1",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "text": "".join(TEXT_PIECES),
                    "index": i,
                    "logprobs": None,
                    "finish_reason": "stop",
                }
                for i in range(returned * prompts)
            ],
            "usage": openai_usage(usage, billed),
        }
    )


def openai_responses(
    body: dict[str, Any], model: str, usage: FakeUsage, behaviour: Behaviour | None
) -> Response:
    text = "".join(TEXT_PIECES)
    output = usage.each(body.get("max_output_tokens"))
    response = {
        "id": f"resp_{secrets.token_hex(8)}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_fake1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": usage.input,
            "input_tokens_details": {"cached_tokens": usage.cached},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.input + output,
        },
    }
    if not body.get("stream"):
        return JSONResponse(response)
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {**response, "status": "in_progress", "usage": None, "output": []},
            },
        ),
    ]
    for n, piece in enumerate(TEXT_PIECES):
        events.append(
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": n + 1,
                    "item_id": "msg_fake1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": piece,
                },
            )
        )
    events.append(
        (
            "response.completed",
            {"type": "response.completed", "sequence_number": 99, "response": response},
        )
    )
    return sse(events, behaviour)


def openai_media(path: str, body: dict[str, Any], usage: FakeUsage) -> Response:
    """Images (gpt-image-1 reports token usage) and audio transcriptions."""
    tokens = {
        "input_tokens": usage.input,
        "output_tokens": usage.output,
        "total_tokens": usage.input + usage.output,
    }
    if path.startswith("v1/audio/"):
        return JSONResponse({"text": "".join(TEXT_PIECES), "usage": {"type": "tokens", **tokens}})
    count = int(body.get("n") or 1)
    image = base64.b64encode(b"\x89PNG fake").decode()
    return JSONResponse(
        {
            "created": int(time.time()),
            "data": [{"b64_json": image} for _ in range(count)],
            "usage": {**tokens, "input_tokens_details": {"text_tokens": usage.input}},
        }
    )
