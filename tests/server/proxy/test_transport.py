"""The aiohttp transport behind the ``httpx`` seam, against a real server on loopback."""

from __future__ import annotations

import asyncio
import gzip
import json

import httpx
from aiohttp import web

from okap_server.proxy.transport import AiohttpTransport

ANSWER = json.dumps({"id": "chatcmpl-1", "usage": {"prompt_tokens": 3}}).encode()


async def answers(request: web.Request) -> web.Response:
    if request.path == "/gzip":
        return web.Response(
            body=gzip.compress(ANSWER),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
    if request.path == "/corrupt":
        return web.Response(
            body=b"not gzip at all",
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
    if request.path == "/stream":
        return web.Response(body=ANSWER, content_type="text/event-stream")
    return web.Response(body=ANSWER, content_type="application/json")


async def fetch_each(paths: list[str]) -> list[tuple[int, bytes | str, str]]:
    """Each answer's status, body (or the name of the error reading it) and content type."""
    app = web.Application()
    app.router.add_get("/{name}", answers)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    transport = AiohttpTransport()
    try:
        seen: list[tuple[int, bytes | str, str]] = []
        for path in paths:
            request = httpx.Request("GET", f"http://127.0.0.1:{port}{path}")
            response = await transport.handle_async_request(request)
            body: bytes | str
            try:
                body = await response.aread()
            except httpx.HTTPError as exc:
                body = type(exc).__name__
            finally:
                await response.aclose()
            seen.append((response.status_code, body, response.headers.get("content-type", "")))
        return seen
    finally:
        await transport.aclose()
        await runner.cleanup()


def test_json_plain_encoded_and_streamed_answers_read_the_same() -> None:
    """A small JSON answer is read whole by the transport, an encoded one is decoded when
    read, and a stream is read as it arrives: the caller sees the same bytes each way."""
    seen = asyncio.run(fetch_each(["/plain", "/gzip", "/stream", "/plain"]))
    assert [status for status, _, _ in seen] == [200, 200, 200, 200]
    assert all(body == ANSWER for _, body, _ in seen)
    assert seen[2][2].startswith("text/event-stream")


def test_an_answer_that_does_not_decode_fails_when_read_not_when_received() -> None:
    """As a body cut off mid-way, so the proxy bills it as answered (never retries it)."""
    [(status, body, _)] = asyncio.run(fetch_each(["/corrupt"]))
    assert (status, body) == (200, "DecodingError")
