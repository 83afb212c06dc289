"""The proxy's front door: ``/v1/{provider}/{path}`` as a plain ASGI layer over the core.

Every request of every app passes here, so it skips the framework: no route scan over the
page routes, no endpoint wrapping, no ``Request`` object. It turns the ASGI scope into a
plain :class:`ProxyRequest`, hands it to :class:`ProxyService`, and sends the answer. The
body is not read here: the core reads it (``ProxyRequest.read_body``) once the token has
checked out, within ``proxy_max_body_bytes`` and the body deadline (``web/bodies.py``).
Anything that is not a proxy call (other paths, other methods, ``/v1/{provider}`` with no
path) goes on to the app, which answers as for any unknown route.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import Response
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from okap_server.context import Vault
from okap_server.proxy import errors, redaction
from okap_server.proxy.messages import ProxyRequest, ProxyResponse
from okap_server.proxy.relay import StreamInterrupted
from okap_server.proxy.runtime import ProxyRuntime
from okap_server.proxy.service import ProxyService
from okap_server.telemetry.metrics import VaultMetrics
from okap_server.telemetry.tracing import ProxyTracer
from okap_server.web.bodies import (
    BodyAbandoned,
    BodyReader,
    BodyRules,
    BodyTimeout,
    BodyTooLarge,
    declared_body,
)

PREFIX = "/v1/"
PROXY_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


@asynccontextmanager
async def running(
    app: FastAPI, vault: Vault, metrics: VaultMetrics, tracer: ProxyTracer
) -> AsyncIterator[None]:
    """The proxy's part of the app's lifespan: start the recorder, flush on shutdown (and
    send the last spans: the tracer's shutdown blocks, so it runs in a thread)."""
    runtime = ProxyRuntime(vault, metrics, tracer)
    runtime.start()
    app.state.proxy = ProxyService(runtime)
    settings = vault.settings
    app.state.body_reader = BodyReader()
    app.state.proxy_body_rules = BodyRules(
        settings.proxy_max_body_bytes,
        settings.body_timeout_seconds,
        settings.body_min_bytes_per_second,
    )
    # The quiet filter goes first: a proxy call's access line is dropped before any work
    # is spent redacting it.
    quiet = None if vault.settings.proxy_access_log else QuietProxyAccessLog()
    if quiet is not None:
        logging.getLogger("uvicorn.access").addFilter(quiet)
    log_filter = redaction.RedactSecrets()
    redaction.install(log_filter)
    try:
        yield
    finally:
        await runtime.aclose()
        await anyio.to_thread.run_sync(tracer.shutdown)
        redaction.uninstall(log_filter)
        if quiet is not None:
            logging.getLogger("uvicorn.access").removeFilter(quiet)


class QuietProxyAccessLog(logging.Filter):
    """Drops the server's access-log line of proxy calls: the audit (``request_log``) has
    every one, with its grant, model, status and cost, and a log line per call costs more
    than the rest of the proxy's logging. ``OKAP_PROXY_ACCESS_LOG=true`` keeps them."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (
            isinstance(args, tuple)
            and len(args) > 2
            and isinstance(args[2], str)
            and args[2].startswith(PREFIX)
        )


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


class _ProxyBody:
    """Reads a proxy call's body when the core asks for it: after the token checks out.

    ``complete`` stays False while part of the body is unread (a refusal before reading
    it, or a body over the limit): the answer then closes the connection instead of
    leaving the server to drain the rest.
    """

    __slots__ = ("complete", "length", "reader", "receive", "rules")

    def __init__(
        self, reader: BodyReader, receive: Receive, rules: BodyRules, length: int | None
    ) -> None:
        self.reader = reader
        self.receive = receive
        self.rules = rules
        self.length = length
        self.complete = False

    async def __call__(self) -> tuple[bytes, bool]:
        """The body, and whether it was over the limit (then not kept)."""
        try:
            body = await self.reader.read(self.receive, self.rules, self.length)
        except BodyTooLarge:
            return b"", True
        except BodyTimeout:
            raise errors.RequestTimeout() from None
        except BodyAbandoned:
            raise errors.ClientGone() from None
        self.complete = True
        return body, False


def _split_path(scope: Scope) -> tuple[str, str] | None:
    """``(provider, path after it)`` of a proxy call, else None. The path is taken from the
    raw request target, as sent, so the core's own normalisation sees any ``%2e%2e``."""
    if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
        return None
    path: str = scope["path"]
    if scope["method"] not in PROXY_METHODS:
        return None
    provider, slash, _ = path[len(PREFIX) :].partition("/")
    if not slash or not provider:
        return None
    raw_path: bytes = scope.get("raw_path") or path.encode()
    raw = raw_path.split(b"?", 1)[0].decode("latin-1")
    prefix_end = len(PREFIX) + len(provider.encode())
    return provider, raw[prefix_end:].lstrip("/")


class ProxyFrontDoor:
    """ASGI layer answering proxy calls itself and passing the rest to ``app``.

    It stands in front of the whole page application (``app.VaultApp``): a proxy call
    passes through none of FastAPI's layers, its error and telemetry middleware included.
    A fault of the vault's own is answered here, in the provider's error shape, and raised
    on for the server to log, as the page stack's error layer does. ``state`` is the app's,
    where the lifespan puts the running :class:`ProxyService`.
    """

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = _split_path(scope)
        if target is None:
            await self.app(scope, receive, send)
            return
        service: ProxyService = self.state.proxy
        provider, path = target
        has_body, length = declared_body(scope)
        state = self.state
        reader = (
            _ProxyBody(state.body_reader, receive, state.proxy_body_rules, length)
            if has_body
            else None
        )
        request = ProxyRequest(
            method=scope["method"],
            provider=provider,
            raw_path=path,
            query=redaction.query_params(scope["query_string"].decode("latin-1")),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=b"",
            read_body=reader,
        )
        try:
            answer = await service.handle(request)
        except Exception:
            await RelayResponse(_closing(service.failed(provider), reader))(scope, receive, send)
            raise
        await RelayResponse(_closing(answer, reader))(scope, receive, send)


def _closing(answer: ProxyResponse, reader: _ProxyBody | None) -> ProxyResponse:
    """Close the connection after an answer given with part of the body unread."""
    if reader is not None and not reader.complete:
        answer.headers.append(("connection", "close"))
    return answer
