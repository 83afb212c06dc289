"""OKAP front doors: the v1.0 binding (``/okap/authorize``) and the reference SDK's
``/okap/request``. Both wait a bounded time for the person, polling the database so the
decision may land on any replica."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from okap_server.authorization import okap_binding, reference
from okap_server.authorization.details import MAX_DETAILS_BYTES
from okap_server.authorization.errors import InvalidRequest
from okap_server.context import Vault
from okap_server.web import openapi as oa
from okap_server.web import openapi_protocol as schemas
from okap_server.web.announce import announce
from okap_server.web.pages import NO_STORE
from okap_server.web.sessions import vault_of

router = APIRouter(tags=[oa.PROTOCOL_TAG])

CHECK_EVERY = 0.25
PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d+)", re.IGNORECASE)


async def read_body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_DETAILS_BYTES:
            raise InvalidRequest(f"body: larger than {MAX_DETAILS_BYTES} bytes")
    return body


def wait_seconds(vault: Vault, prefer: str | None) -> float:
    """``Settings.okap_wait_seconds``, or less if the app says ``Prefer: wait=N``."""
    limit = vault.settings.okap_wait_seconds
    match = PREFER_WAIT.search(prefer or "")
    return min(limit, float(match.group(1))) if match else limit


async def wait_for(
    check: Callable[[], dict[str, Any] | None],
    seconds: float,
    gone: Callable[[], Awaitable[bool]] | None = None,
) -> dict[str, Any] | None:
    """Call ``check`` until it answers or time is up; stop early (None) if the app left,
    so a token is never minted for a caller that is no longer there to receive it."""
    deadline = time.monotonic() + seconds
    while True:
        if gone is not None and await gone():
            return None
        result = await run_in_threadpool(check)
        if result is not None or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(min(CHECK_EVERY, max(0.0, deadline - time.monotonic())))


def _json(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers=NO_STORE)


@router.post(
    "/okap/authorize",
    summary="OKAP v1.0 access request: waits a bounded time for the person",
    responses={
        200: oa.json_response("Granted, denied, or still pending", schemas.OKAP_ANSWER),
        **oa.oauth_errors(400),
    },
    openapi_extra={
        **oa.json_body(
            schemas.OKAP_REQUEST,
            {
                "okap": "1.0",
                "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
                "client": {"name": "Notes", "url": "https://notes.example"},
            },
        ),
        "parameters": [schemas.PREFER],
    },
)
async def okap_authorize(request: Request) -> JSONResponse:
    vault = vault_of(request)
    body = await read_body(request)

    def begin() -> okap_binding.Started:
        with vault.session() as session:
            return okap_binding.start(session, body, vault.providers, vault.settings)

    started = await run_in_threadpool(begin)
    announce(vault.settings, okap_binding.consent_url(vault.settings, started.request.id))
    seconds = wait_seconds(vault, request.headers.get("prefer"))
    return await _answer_or_pending(vault, started, seconds, request.is_disconnected)


async def _answer_or_pending(
    vault: Vault,
    started: okap_binding.Started,
    seconds: float,
    gone: Callable[[], Awaitable[bool]] | None = None,
) -> JSONResponse:
    def check() -> dict[str, Any] | None:
        with vault.session() as session:
            row = session.merge(started.request)
            return okap_binding.answer(session, row, started.poll_handle, vault.settings)

    result = await wait_for(check, seconds, gone)
    if result is None:
        result = okap_binding.pending_body(started.request, started.poll_handle, vault.settings)
    return _json(result)


@router.get(
    "/okap/authorize/{handle}",
    summary="Poll a pending OKAP request (the poll_url)",
    responses={
        200: oa.json_response("Granted, denied, or still pending", schemas.OKAP_ANSWER),
        **oa.oauth_errors(400),
    },
    openapi_extra={"parameters": [schemas.PREFER]},
)
async def okap_poll(request: Request, handle: str) -> JSONResponse:
    vault = vault_of(request)

    def find() -> okap_binding.Started:
        with vault.session() as session:
            return okap_binding.Started(okap_binding.find_by_handle(session, handle), handle)

    started = await run_in_threadpool(find)
    prefer = request.headers.get("prefer")
    seconds = wait_seconds(vault, prefer) if prefer else 0
    return await _answer_or_pending(vault, started, seconds, request.is_disconnected)


@router.post(
    "/okap/request",
    summary="The reference SDK's flat access request (okap 0.1.x on PyPI)",
    responses={
        200: oa.json_response(
            "Approved (token) or not (error, error_code)", schemas.REFERENCE_ANSWER
        ),
        **oa.oauth_errors(400),
    },
    openapi_extra=oa.json_body(
        schemas.REFERENCE_REQUEST,
        {"provider": "openai", "models": ["gpt-4o-mini"], "app_name": "Notes"},
    ),
)
async def reference_request(request: Request) -> JSONResponse:
    vault = vault_of(request)
    body = await read_body(request)

    def begin() -> Any:
        with vault.session() as session:
            return reference.start(session, body, vault.providers, vault.settings)

    row = await run_in_threadpool(begin)
    url = okap_binding.consent_url(vault.settings, row.id)
    announce(vault.settings, url)

    def check() -> dict[str, Any] | None:
        with vault.session() as session:
            return reference.answer(session, session.merge(row), vault.settings)

    result = await wait_for(check, vault.settings.okap_wait_seconds, request.is_disconnected)
    if result is None:

        def stop() -> dict[str, Any]:
            with vault.session() as session:
                current = session.merge(row)
                if okap_binding.give_up(session, current):
                    return reference.denied(
                        "Nobody approved the request in time. Try again, and approve it in "
                        f"the vault ({vault.settings.effective_page_url}/consent) while "
                        "the app waits.",
                        "timeout",
                    )
                answered = reference.answer(session, current, vault.settings)
                return answered or reference.denied("The request was not decided.", "timeout")

        result = await run_in_threadpool(stop)
    return _json(result)
