"""``/webhooks``: the person's webhook endpoints, each with its delivery log (status,
attempts, last error) and its state: an endpoint disabled after failing for a day says so
here, and why. A new endpoint's signing secret is shown once, on the page that answers
the form (never in a URL)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from okap_server.dashboard.formatting import timestamp
from okap_server.dashboard.web import done, form_of, not_found, notice_of
from okap_server.manage import webhooks as core
from okap_server.web import openapi as oa
from okap_server.web.csrf import require_csrf
from okap_server.web.pages import render_page
from okap_server.web.sessions import SignedIn, current_account, vault_of
from okap_server.webhooks.events import SUBSCRIBABLE

router = APIRouter()
LOG_ROWS = 20
_DONE = "Done: to /webhooks"
_GONE = {404: "No such endpoint in this account"}


def _page(
    request: Request,
    signed_in: SignedIn,
    *,
    error: str | None = None,
    created: tuple[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    vault = vault_of(request)
    with vault.session() as session:
        endpoints = [
            (e, core.deliveries(session, e.id, LOG_ROWS))
            for e in core.list_endpoints(session, signed_in.account.id)
        ]
    page = render_page(
        request,
        "dashboard/webhooks.html",
        status_code=status_code,
        signed_in=signed_in,
        endpoints=endpoints,
        kinds=SUBSCRIBABLE,
        timestamp=timestamp,
        error=error,
        created=created,
        typed=typed or {},
        notice=notice_of(request),
    )
    if created is not None:
        page.headers["Cache-Control"] = "no-store"
    return page


@router.get("/webhooks", include_in_schema=False)
def webhooks_page(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    return _page(request, signed_in)


@router.post(
    "/webhooks",
    **oa.form_post(
        "Add a webhook endpoint; its signing secret is shown once",
        {
            "url": {"type": "string", "examples": ["https://example.com/okap-hooks"]},
            "description": oa.TEXT,
            "events": {"type": "string", "enum": list(SUBSCRIBABLE)},
        },
        done=None,
        pages={200: "Added: the secret, once", 422: "The URL or events were refused"},
    ),
)
async def add_webhook(request: Request, signed_in: SignedIn = Depends(require_csrf)) -> Response:
    form = await request.form()
    url = str(form.get("url") or "")
    description = str(form.get("description") or "")
    events = [str(e) for e in form.getlist("events")]
    vault, account_id = vault_of(request), signed_in.account.id
    try:
        endpoint, secret = await run_in_threadpool(
            core.create_endpoint, vault, account_id, url, events or None, description
        )
    except core.WebhookError as exc:
        why, typed = str(exc), {"url": url[:2048], "description": description[:200]}
        return await run_in_threadpool(
            lambda: _page(request, signed_in, error=why, typed=typed, status_code=422)
        )
    return await run_in_threadpool(lambda: _page(request, signed_in, created=(endpoint.id, secret)))


async def _act(request: Request, signed_in: SignedIn, action: Any, endpoint_id: str) -> Any:
    await form_of(request)
    return await run_in_threadpool(action, vault_of(request), signed_in.account.id, endpoint_id)


@router.post(
    "/webhooks/{endpoint_id}/test",
    **oa.form_post("Send a test event", {}, done=_DONE, pages={**_GONE, 409: "Disabled"}),
)
async def test_webhook(
    request: Request, endpoint_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    try:
        sent = await _act(request, signed_in, core.send_test, endpoint_id)
    except core.WebhookError as exc:
        why = str(exc)
        return await run_in_threadpool(
            lambda: _page(request, signed_in, error=why, status_code=409)
        )
    return done("/webhooks", "webhook_test") if sent else not_found(request, "endpoint")


@router.post(
    "/webhooks/{endpoint_id}/enable",
    **oa.form_post("Send to a disabled endpoint again", {}, done=_DONE, pages=_GONE),
)
async def enable_webhook(
    request: Request, endpoint_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    if not await _act(request, signed_in, core.enable_endpoint, endpoint_id):
        return not_found(request, "endpoint")
    return done("/webhooks", "webhook_enabled")


@router.post(
    "/webhooks/{endpoint_id}/remove",
    **oa.form_post("Remove a webhook endpoint", {}, done=_DONE, pages=_GONE),
)
async def remove_webhook(
    request: Request, endpoint_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    if not await _act(request, signed_in, core.remove_endpoint, endpoint_id):
        return not_found(request, "endpoint")
    return done("/webhooks", "webhook_removed")
