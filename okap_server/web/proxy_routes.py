"""Thin route over the proxy core: ``/v1/{provider}/{path}``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.types import Message, Receive, Scope, Send

from okap_server.context import Vault
from okap_server.proxy import redaction
from okap_server.proxy.relay import StreamInterrupted
from okap_server.proxy.runtime import ProxyRuntime
from okap_server.proxy.service import ProxyRequest, ProxyResponse, ProxyService

router = APIRouter()

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@asynccontextmanager
async def running(app: FastAPI, vault: Vault) -> AsyncIterator[None]:
    """The proxy's part of the app's lifespan: start the recorder, flush on shutdown."""
    runtime = ProxyRuntime(vault)
    runtime.start()
    app.state.proxy = ProxyService(runtime)
    log_filter = redaction.RedactSecrets()
    redaction.install(log_filter)
    try:
        yield
    finally:
        await runtime.aclose()
        redaction.uninstall(log_filter)


class RelayResponse(Response):
    """Sends a proxy answer; a stream goes out chunk by chunk as it arrives.

    A client that goes away cancels the relay (its ``finally`` settles the spend); an
    upstream that breaks off gets the app's connection cut rather than ended cleanly.
    """

    def __init__(self, answer: ProxyResponse) -> None:
        self.answer = answer
        self.status_code = answer.status
        self.background = None
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
        if answer.stream is None:
            headers.append((b"content-length", str(len(answer.body)).encode()))
        self.raw_headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }
        stream = self.answer.stream
        if stream is None:
            await send(start)
            await send({"type": "http.response.body", "body": self.answer.body})
            return
        try:
            async with anyio.create_task_group() as group:

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            group.cancel_scope.cancel()
                            return

                group.start_soon(watch_disconnect)
                try:
                    await send(start)
                    async for chunk in stream:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                except (StreamInterrupted, OSError):
                    pass  # the response stays incomplete: the server closes the connection
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()


async def _read_body(request: Request, limit: int) -> tuple[bytes, bool]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return b"", True
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return b"", True
        parts.append(chunk)
    return b"".join(parts), False


@router.api_route("/v1/{provider}/{path:path}", methods=PROXY_METHODS, include_in_schema=False)
async def proxy(provider: str, path: str, request: Request) -> Response:
    service: ProxyService = request.app.state.proxy
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    prefix_end = len(b"/v1/") + len(provider.encode())
    raw = raw_path.split(b"?", 1)[0].decode("latin-1")
    body, too_large = await _read_body(request, service.runtime.settings.proxy_max_body_bytes)
    answer = await service.handle(
        ProxyRequest(
            method=request.method,
            provider=provider,
            raw_path=raw[prefix_end:].lstrip("/"),
            query=list(request.query_params.multi_items()),
            headers=list(request.headers.items()),
            body=body,
            body_too_large=too_large,
        )
    )
    return RelayResponse(answer)
