"""A fake OpenAI + Anthropic + Gemini API on a loopback port, for tests that use real SDKs.

One server serves all three, each under its own prefix, so a vault points its upstreams at
``fake.upstreams()``::

    openai     {url}/openai/v1      (chat/completions, responses, embeddings, models)
    anthropic  {url}/anthropic      (v1/messages, v1/messages/count_tokens, v1/models)
    google     {url}/google         ({version}/models/{m}:generateContent,
                                     :streamGenerateContent, :embedContent,
                                     :batchEmbedContents, :countTokens, {version}/models)

It records every request (method, path, query, headers including the credential, body) in
``fake.received``, answers realistic JSON and SSE with usage (OpenAI's usage chunk only when
``stream_options.include_usage`` is set; Anthropic ``message_start``/``message_delta``;
Gemini ``usageMetadata``), and can be scripted per provider::

    with running_fake_upstream() as fake:
        fake.usage["openai"] = FakeUsage(input=30, output=7)
        fake.script("openai", Respond(503, retry_after="0"), Respond(200))  # 503, then normal
        fake.script("anthropic", BreakStream(after_events=3))  # cut the connection mid-stream
        fake.script("google", SlowStream(delay=0.5))  # pause between streamed events
        ...
        fake.requests_for("openai")[-1].headers["authorization"]

Scripted behaviours are used one per request, in order; then the fake answers normally.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fake_answers import (
    FILE_CONTENT,
    TEXT_PIECES,
    Behaviour,
    BreakStream,
    FakeUsage,
    Respond,
    SlowStream,
    error_response,
    openai_answer,
)
from tests.support.fake_anthropic import anthropic_answer
from tests.support.fake_google import google_answer
from tests.support.fake_objects import FakeObjects
from tests.support.live import free_port, serve_app

__all__ = [
    "FILE_CONTENT",
    "TEXT_PIECES",
    "BreakStream",
    "FakeUpstream",
    "FakeUsage",
    "Received",
    "Respond",
    "SlowStream",
    "running_fake_upstream",
]


@dataclass
class Received:
    provider: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    # A multipart/form-data body as Starlette (python-multipart) reads it: every part in
    # order, a text field's value as str, a file's as (filename, content).
    form: list[tuple[str, str | tuple[str, bytes]]] | None = None

    @property
    def json(self) -> Any:
        """The JSON body; None for none, or for a form (a file upload)."""
        if not self.body or "json" not in self.headers.get("content-type", "json"):
            return None
        return json.loads(self.body)

    @property
    def fields(self) -> dict[str, str]:
        """The text fields of a form (the last of a repeated name, as Starlette's does)."""
        return {name: value for name, value in self.form or [] if isinstance(value, str)}


class FakeUpstream:
    def __init__(self) -> None:
        self.url = ""
        self.received: list[Received] = []
        self.usage: dict[str, FakeUsage] = {
            "openai": FakeUsage(),
            "anthropic": FakeUsage(),
            "google": FakeUsage(),
        }
        self._scripts: dict[str, deque[Behaviour]] = {}
        self._lock = threading.Lock()
        self.objects = FakeObjects()
        methods = ["GET", "POST", "PATCH", "DELETE"]
        self.app = Starlette(
            routes=[
                Route("/openai/{path:path}", self._openai, methods=methods),
                Route("/anthropic/{path:path}", self._anthropic, methods=methods),
                Route("/google/{path:path}", self._google, methods=methods),
            ]
        )

    # -- the test-facing API -------------------------------------------------------------

    def upstreams(self) -> dict[str, str]:
        """Upstream base URLs for ``Settings(upstreams=...)``."""
        return {
            "openai": f"{self.url}/openai/v1",
            "anthropic": f"{self.url}/anthropic",
            "google": f"{self.url}/google",
        }

    def script(self, provider: str, *behaviours: Behaviour) -> None:
        with self._lock:
            self._scripts.setdefault(provider, deque()).extend(behaviours)

    def requests_for(self, provider: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.provider == provider]

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self._scripts.clear()
            self.usage = {p: FakeUsage() for p in ("openai", "anthropic", "google")}
            self.objects = FakeObjects()

    # -- plumbing ------------------------------------------------------------------------

    async def _record(self, provider: str, request: Request) -> tuple[Received, Behaviour | None]:
        body = await request.body()
        received = Received(
            provider=provider,
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            received.form = await read_form(request)
        with self._lock:
            self.received.append(received)
            script = self._scripts.get(provider)
            behaviour = script.popleft() if script else None
        return received, behaviour

    async def _answer(self, provider: str, request: Request) -> Response:
        received, behaviour = await self._record(provider, request)
        if isinstance(behaviour, Respond) and behaviour.status >= 300:
            return error_response(provider, behaviour)
        if isinstance(behaviour, Respond) and behaviour.body is not None:
            return JSONResponse(behaviour.body, behaviour.status)  # a canned answer
        path = request.path_params["path"]
        body = received.fields if received.form is not None else received.json or {}
        stored = self.objects.answer(provider, request.method, path, body)
        if stored is not None:
            return stored
        usage = self.usage[provider]
        if provider == "openai":
            return openai_answer(path, body, usage, behaviour)
        if provider == "anthropic":
            return anthropic_answer(path, body, usage, behaviour)
        return google_answer(path, body, usage, behaviour, received.query)

    async def _openai(self, request: Request) -> Response:
        return await self._answer("openai", request)

    async def _anthropic(self, request: Request) -> Response:
        return await self._answer("anthropic", request)

    async def _google(self, request: Request) -> Response:
        return await self._answer("google", request)


async def read_form(request: Request) -> list[tuple[str, str | tuple[str, bytes]]]:
    parts: list[tuple[str, str | tuple[str, bytes]]] = []
    async with request.form() as form:
        for name, value in form.multi_items():
            if isinstance(value, str):
                parts.append((name, value))
            else:
                parts.append((name, (value.filename or "", await value.read())))
    return parts


@contextmanager
def running_fake_upstream() -> Iterator[FakeUpstream]:
    """Start the fake on a free loopback port for the length of the block."""
    fake = FakeUpstream()
    port = free_port()
    with serve_app(fake.app, port) as url:
        fake.url = url
        yield fake
