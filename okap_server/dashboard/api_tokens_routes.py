"""``/api-tokens`` (the person's management tokens) and ``/api-tokens/new`` (make one).

A created token is on the POST's own answer, once (``no-store``), never in a URL or a
redirect: reloading the list shows its name, scopes and hint of use, not the token.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from okap_server.dashboard import api_tokens
from okap_server.dashboard.web import done, not_found, notice_of
from okap_server.manage.management_tokens import MAX_NAME, ManagementTokenError
from okap_server.web import openapi as oa
from okap_server.web.csrf import require_csrf
from okap_server.web.pages import render_page
from okap_server.web.sessions import SignedIn, client_ip, current_account, vault_of

router = APIRouter()


@router.get("/api-tokens", include_in_schema=False)
def list_page(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    vault = vault_of(request)
    return render_page(
        request,
        "dashboard/api_tokens.html",
        signed_in=signed_in,
        tokens=api_tokens.tokens_of(vault, signed_in.account.id),
        notice=notice_of(request),
        api_url=f"{vault.settings.effective_public_url}/api/v1",
    )


def _new_page(
    request: Request,
    signed_in: SignedIn,
    *,
    error: str | None = None,
    typed_name: str = "",
    typed_scopes: list[str] | None = None,
    typed_expiry: str = api_tokens.DEFAULT_EXPIRY,
    status_code: int = 200,
) -> Response:
    return render_page(
        request,
        "dashboard/api_token_new.html",
        status_code=status_code,
        signed_in=signed_in,
        scopes=api_tokens.offered_scopes(signed_in.account),
        expiry_choices=api_tokens.EXPIRY_CHOICES,
        max_name=MAX_NAME,
        error=error,
        typed_name=typed_name,
        typed_scopes=typed_scopes or [],
        typed_expiry=typed_expiry,
    )


@router.get("/api-tokens/new", include_in_schema=False)
def new_page(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    return _new_page(request, signed_in)


@router.post(
    "/api-tokens",
    **oa.form_post(
        "Create a management token for the /api/v1 API; it is shown once",
        {
            "name": {"type": "string", "maxLength": MAX_NAME},
            "scope": {"type": "string", "description": "Repeat for each scope"},
            "expires_in": {
                "type": "string",
                "description": "Days until it expires; empty for never",
            },
        },
        done=None,
        pages={
            200: "Created: the token, shown this once",
            422: "Refused; nothing was stored",
        },
    ),
)
async def create(request: Request, signed_in: SignedIn = Depends(require_csrf)) -> Response:
    form = await request.form()
    name = str(form.get("name") or "")
    scopes = [str(s) for s in form.getlist("scope")]
    expiry = str(form.get("expires_in") or "")
    try:
        view, token = await run_in_threadpool(
            api_tokens.create,
            vault_of(request),
            signed_in.account.id,
            name,
            scopes,
            expiry,
            client_ip(request),
        )
    except ManagementTokenError as exc:
        return _new_page(
            request,
            signed_in,
            error=f"{exc}. Nothing was stored.",
            typed_name=name[:MAX_NAME],
            typed_scopes=scopes,
            typed_expiry=expiry,
            status_code=422,
        )
    return render_page(
        request,
        "dashboard/api_token_created.html",
        signed_in=signed_in,
        token=token,
        view=view,
        api_url=f"{vault_of(request).settings.effective_public_url}/api/v1",
    )


@router.post(
    "/api-tokens/{token_id}/revoke",
    **oa.form_post(
        "Revoke a management token",
        {},
        done="Revoked: to /api-tokens",
        pages={404: "No such token"},
    ),
)
async def revoke(
    request: Request, token_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    revoked = await run_in_threadpool(
        api_tokens.revoke, vault_of(request), signed_in.account.id, token_id, client_ip(request)
    )
    if not revoked:
        return not_found(request, "token")
    return done("/api-tokens", "api_token_revoked")
