"""The fake upstream's Gemini answers: JSON, server-sent events and the JSON-array stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse

from tests.support.fake_answers import (
    TEXT_PIECES,
    Behaviour,
    FakeUsage,
    answers_of,
    sse,
)


def google_answer(
    path: str,
    body: dict[str, Any],
    usage: FakeUsage,
    behaviour: Behaviour | None,
    query: dict[str, str],
) -> Response:
    """What the fake google API answers to one request."""
    version, _, rest = path.partition("/")
    if rest == "models":
        return JSONResponse(
            {
                "models": [
                    {
                        "name": "models/gemini-2.5-flash",
                        "displayName": "Gemini 2.5 Flash",
                        "supportedGenerationMethods": ["generateContent"],
                    }
                ]
            }
        )
    model, _, method = rest.removeprefix("models/").partition(":")
    # candidatesTokenCount is the sum over every candidate generated (candidateCount).
    config = body.get("generationConfig") or body.get("generation_config") or {}
    count = answers_of(config, "candidateCount", "candidate_count")
    cap = config.get("maxOutputTokens", config.get("max_output_tokens"))
    output = count * usage.each(cap)
    meta = {
        "promptTokenCount": usage.input,
        "candidatesTokenCount": output,
        "totalTokenCount": usage.input + output,
    }
    if usage.cached:
        meta["cachedContentTokenCount"] = usage.cached
    meta.update(usage.details)
    if method == "countTokens":
        return JSONResponse({"totalTokens": usage.input})
    if method == "embedContent":
        return JSONResponse({"embedding": {"values": [0.1, 0.2, 0.3]}})
    if method == "batchEmbedContents":
        count = len(body.get("requests") or [1])
        return JSONResponse({"embeddings": [{"values": [0.1, 0.2, 0.3]}] * count})

    def candidate(text: str, finish: str | None, index: int = 0) -> dict[str, Any]:
        item: dict[str, Any] = {
            "content": {"role": "model", "parts": [{"text": text}]},
            "index": index,
        }
        if finish:
            item["finishReason"] = finish
        return item

    if method == "generateContent":
        return JSONResponse(
            {
                "candidates": [candidate("".join(TEXT_PIECES), "STOP", i) for i in range(count)],
                "usageMetadata": meta,
                "modelVersion": model,
                "responseId": "fake1",
            }
        )
    if method == "streamGenerateContent" and query.get("alt") != "sse":
        return google_json_array(model, usage, output)
    if method == "streamGenerateContent":
        events: list[tuple[str | None, dict[str, Any] | str]] = []
        for n, piece in enumerate(TEXT_PIECES):
            last = n == len(TEXT_PIECES) - 1
            partial = {
                "promptTokenCount": usage.input,
                "candidatesTokenCount": output if last else n + 1,
                "totalTokenCount": usage.input + (output if last else n + 1),
                **(usage.details if last else {}),
            }
            events.append(
                (
                    None,
                    {
                        "candidates": [candidate(piece, "STOP" if last else None)],
                        "usageMetadata": partial,
                        "modelVersion": model,
                        "responseId": "fake1",
                    },
                )
            )
        return sse(events, behaviour)
    return JSONResponse(
        {"error": {"code": 404, "message": "no such method", "status": "NOT_FOUND"}},
        status_code=404,
    )


def google_json_array(model: str, usage: FakeUsage, output: int) -> StreamingResponse:
    """``streamGenerateContent`` without ``alt=sse``: one JSON array, sent piece by piece."""

    async def body() -> AsyncIterator[bytes]:
        for n, piece in enumerate(TEXT_PIECES):
            last = n == len(TEXT_PIECES) - 1
            item: dict[str, Any] = {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": piece}]},
                        "index": 0,
                        **({"finishReason": "STOP"} if last else {}),
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": usage.input,
                    "candidatesTokenCount": output if last else n + 1,
                    **(usage.details if last else {}),
                },
                "modelVersion": model,
            }
            yield (b"[" if n == 0 else b",\r\n") + json.dumps(item, indent=2).encode()
        yield b"]"

    return StreamingResponse(body(), media_type="application/json")
