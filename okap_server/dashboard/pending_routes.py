"""``/pending``: requests waiting for this account, decided here or on the consent page.

``/pending/list`` is the list alone (an HTML fragment) and ``/pending/status`` a small JSON
document; ``static/dashboard.js`` polls them so a new request appears without a reload.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from okap_server.dashboard import pending
from okap_server.dashboard.settings import auto_open_consent
from okap_server.dashboard.web import done, form_of, not_found, notice_of
from okap_server.manage import decisions
from okap_server.web import openapi as oa
from okap_server.web.csrf import require_csrf
from okap_server.web.pages import NO_STORE, render_page
from okap_server.web.sessions import SignedIn, client_ip, current_account, vault_of

router = APIRouter()


def _page(
    request: Request,
    signed_in: SignedIn,
    *,
    template: str = "dashboard/pending.html",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    vault = vault_of(request)
    with vault.session() as session:
        views = pending.waiting(vault, session, signed_in.account.id)
    return render_page(
        request,
        template,
        status_code=status_code,
        signed_in=signed_in,
        waiting=views,
        error=error,
        notice=notice_of(request),
    )


@router.get("/pending", include_in_schema=False)
def pending_page(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    return _page(request, signed_in)


@router.get("/pending/list", include_in_schema=False)
def pending_fragment(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    return _page(request, signed_in, template="dashboard/pending_list.html")


@router.get(
    "/pending/status",
    summary="Requests waiting for this account (polled by the dashboard's script)",
    tags=[oa.DASHBOARD_TAG],
    responses={
        200: oa.json_response(
            "The waiting requests",
            {
                "type": "object",
                "required": ["count", "ids", "auto_open", "poll_ms"],
                "properties": {
                    "count": {"type": "integer", "minimum": 0},
                    "ids": {"type": "array", "items": oa.TEXT},
                    "auto_open": {"type": "boolean"},
                    "poll_ms": {"type": "integer"},
                },
            },
        ),
        303: oa.redirect("Not signed in: to /signin"),
        503: oa.html("The vault cannot reach its database"),
    },
)
def pending_status(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    vault = vault_of(request)
    with vault.session() as session:
        views = pending.waiting(vault, session, signed_in.account.id)
    return JSONResponse(
        {
            "count": len(views),
            "ids": [v.id for v in views],
            "auto_open": auto_open_consent(signed_in.account),
            "poll_ms": round(vault.settings.dashboard_poll_seconds * 1000),
        },
        headers=NO_STORE,
    )


async def _decide(
    request: Request, request_id: str, signed_in: SignedIn, approve: bool, reuse: bool = False
) -> Response:
    vault = vault_of(request)
    try:
        if reuse:
            grant_id = (await form_of(request)).get("reuse_grant_id", "")
            await run_in_threadpool(
                decisions.reuse_from_list,
                vault,
                signed_in.account.id,
                request_id,
                grant_id,
                ip=client_ip(request),
            )
        else:
            await run_in_threadpool(
                decisions.decide_from_list,
                vault,
                signed_in.account.id,
                request_id,
                approve=approve,
                ip=client_ip(request),
            )
    except LookupError:
        return not_found(request, "request")
    except decisions.PendingError as exc:
        return _page(request, signed_in, error=str(exc), status_code=409)
    return done("/pending", "reused" if reuse else "approved" if approve else "denied")


@router.post(
    "/pending/{request_id}/approve",
    **oa.form_post(
        "Approve a waiting request as asked",
        {},
        done="Approved: to /pending",
        pages={404: "No such request", 409: "It cannot be approved from the list"},
    ),
)
async def approve(
    request: Request, request_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    return await _decide(request, request_id, signed_in, approve=True)


@router.post(
    "/pending/{request_id}/reuse",
    **oa.form_post(
        "Approve a waiting request by reusing the app's live grant for the same access",
        {
            "reuse_grant_id": {
                "type": "string",
                "description": "The app's live grant the list offered to reuse",
            }
        },
        done="Approved: to /pending",
        pages={404: "No such request", 409: "Decided meanwhile, or that grant is gone"},
    ),
)
async def reuse(
    request: Request, request_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    return await _decide(request, request_id, signed_in, approve=True, reuse=True)


@router.post(
    "/pending/{request_id}/deny",
    **oa.form_post(
        "Deny a waiting request",
        {},
        done="Denied: to /pending",
        pages={404: "No such request", 409: "It was decided meanwhile"},
    ),
)
async def deny(
    request: Request, request_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    return await _decide(request, request_id, signed_in, approve=False)
