"""OKAP front doors: the v1.0 binding (``/okap/authorize``) and the reference SDK's
``/okap/request``. Both wait a bounded time for the person, without holding a thread: the
wait is an event the process's sweeper sets once the database says the request is
decided, on any replica (``web/long_poll.py``)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
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
from okap_server.web.long_poll import DecisionWatch
from okap_server.web.pages import NO_STORE
from okap_server.web.rate_limit import admit
from okap_server.web.sessions import vault_of

router = APIRouter(tags=[oa.PROTOCOL_TAG])

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
    watch: DecisionWatch,
    request_id: str,
    check: Callable[[], dict[str, Any] | None],
    seconds: float,
    request: Request,
    *,
    checked: bool = False,
) -> dict[str, Any] | None:
    """``check``'s answer, now or once the request is decided within ``seconds``; None if
    still pending then. Stops early (None) if the app left, so a token is never minted for
    a caller that is no longer there to receive it. Only ``check`` runs on a thread, now
    (unless the caller has just ``checked``) and once after the decision; the wait itself
    is two events, the decision's (``web/long_poll.py``) and the app's disconnect."""
    if not checked:
        if await request.is_disconnected():
            return None
        result = await run_in_threadpool(check)
        if result is not None:
            return result
    if seconds <= 0:
        return None
    with watch.slot(request_id) as decided:
        if decided is None:
            return None  # past a cap: the app is told "pending" now and polls again
        waiting = asyncio.ensure_future(decided.wait())
        leaving = asyncio.ensure_future(_left(request))
        try:
            await asyncio.wait(
                (waiting, leaving), timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiting.cancel()
            leaving.cancel()
        if leaving.done() or not decided.is_set():
            return None
    return await run_in_threadpool(check)


async def _left(request: Request) -> None:
    """Returns when the app closes its connection (the server's ``http.disconnect``)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def watch_of(request: Request) -> DecisionWatch:
    watch: DecisionWatch = request.app.state.decisions
    return watch


def _json(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers=NO_STORE)


@router.post(
    "/okap/authorize",
    summary="OKAP v1.0 access request: waits a bounded time for the person",
    responses={
        200: oa.json_response("Granted, denied, or still pending", schemas.OKAP_ANSWER),
        **oa.oauth_errors(400),
        **oa.too_many_requests(),
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
    caller = admit(request, "okap")
    body = await read_body(request)

    def begin() -> okap_binding.Started:
        with vault.session() as session:
            return okap_binding.start(session, body, vault.providers, vault.settings, caller=caller)

    started = await run_in_threadpool(begin)
    url = okap_binding.consent_url(vault.settings, started.request.id)
    announce(vault.settings, url, client_name=started.request.client_name)
    seconds = wait_seconds(vault, request.headers.get("prefer"))
    return await _answer_or_pending(request, started, seconds, checked=True)  # just made


async def _answer_or_pending(
    request: Request, started: okap_binding.Started, seconds: float, *, checked: bool
) -> JSONResponse:
    vault = vault_of(request)

    def check() -> dict[str, Any] | None:
        with vault.session() as session:
            row = session.merge(started.request)
            return okap_binding.answer(session, row, started.poll_handle, vault.settings)

    watch = watch_of(request)
    result = await wait_for(watch, started.request.id, check, seconds, request, checked=checked)
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

    def find() -> tuple[okap_binding.Started, dict[str, Any] | None]:
        """The request and its answer now, in one trip to the thread pool; an unknown
        handle is refused here, at once."""
        with vault.session() as session:
            row = okap_binding.find_by_handle(session, handle)
            return okap_binding.Started(row, handle), okap_binding.answer(
                session, row, handle, vault.settings
            )

    if await request.is_disconnected():
        return _json({})  # nobody to answer: never mint a token for a caller that left
    started, answered = await run_in_threadpool(find)
    if answered is not None:
        return _json(answered)
    prefer = request.headers.get("prefer")
    seconds = wait_seconds(vault, prefer) if prefer else 0
    return await _answer_or_pending(request, started, seconds, checked=True)


@router.post(
    "/okap/request",
    summary="The reference SDK's flat access request (okap 0.1.x on PyPI)",
    responses={
        200: oa.json_response(
            "Approved (token) or not (error, error_code)", schemas.REFERENCE_ANSWER
        ),
        **oa.oauth_errors(400),
        **oa.too_many_requests(),
    },
    openapi_extra=oa.json_body(
        schemas.REFERENCE_REQUEST,
        {"provider": "openai", "models": ["gpt-4o-mini"], "app_name": "Notes"},
    ),
)
async def reference_request(request: Request) -> JSONResponse:
    vault = vault_of(request)
    caller = admit(request, "reference")
    body = await read_body(request)

    def begin() -> Any:
        with vault.session() as session:
            return reference.start(session, body, vault.providers, vault.settings, caller=caller)

    row = await run_in_threadpool(begin)
    url = okap_binding.consent_url(vault.settings, row.id)
    announce(vault.settings, url, client_name=row.client_name)

    def check() -> dict[str, Any] | None:
        with vault.session() as session:
            return reference.answer(session, session.merge(row), vault.settings)

    seconds = vault.settings.okap_wait_seconds
    result = await wait_for(watch_of(request), row.id, check, seconds, request, checked=True)
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
