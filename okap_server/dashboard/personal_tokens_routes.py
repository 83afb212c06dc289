"""``/tokens/new`` (the "New token" page) and ``POST /tokens`` (mint a personal token).

The token is on the POST's own answer, once (``no-store``), never in a URL or behind a
redirect: the grant then shows in Apps like any other, where it is revoked.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from okap_server.authorization.errors import InvalidAuthorizationDetails
from okap_server.authorization.narrowing import NarrowingError
from okap_server.dashboard import personal_tokens
from okap_server.dashboard.web import form_lists_of
from okap_server.grants.capabilities import LIMIT_NAMES
from okap_server.manage.personal import MAX_NAME
from okap_server.web import openapi as oa
from okap_server.web.csrf import require_csrf
from okap_server.web.pages import render_page
from okap_server.web.sessions import SignedIn, client_ip, current_account, vault_of

router = APIRouter()

FIELDS: dict[str, oa.Schema] = {
    "name": {"type": "string", "maxLength": MAX_NAME, "description": "What the token is for"},
    "d0.provider": {"type": "string", "description": "A provider you have a key for"},
    "d0.models_text": {"type": "string", "description": "Comma-separated; empty for all"},
    "d0.capabilities": {"type": "string", "description": "Repeat for each capability"},
    **{f"d0.limit.{name}": oa.TEXT for name in LIMIT_NAMES},
    "d0.expires": {"type": "string", "description": "YYYY-MM-DDTHH:MM, UTC"},
    "d0.key_id": {"type": "string", "description": "Which of your keys pays"},
}


def _page(
    request: Request,
    signed_in: SignedIn,
    provider: str | None,
    *,
    error: str | None = None,
    typed_name: str = "",
    status_code: int = 200,
) -> Response:
    vault = vault_of(request)
    view = personal_tokens.new_token_view(vault, signed_in.account.id, provider)
    return render_page(
        request,
        "dashboard/personal_token_new.html",
        status_code=status_code,
        signed_in=signed_in,
        view=view,
        entries=view.entries,
        summary=view.summary,
        default_grant_days=vault.settings.default_grant_days,
        max_name=MAX_NAME,
        error=error,
        typed_name=typed_name,
    )


@router.get("/tokens/new", include_in_schema=False)
def new_page(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    return _page(request, signed_in, request.query_params.get("provider"))


@router.post(
    "/tokens",
    **oa.form_post(
        "Create a personal token (an okap_ token for your own scripts); it is shown once",
        FIELDS,
        done=None,
        pages={
            200: "Created: the token and its base_url, shown this once",
            422: "Refused; the form again with the reason, nothing stored",
        },
    ),
)
async def create(request: Request, signed_in: SignedIn = Depends(require_csrf)) -> Response:
    form = await form_lists_of(request)
    vault = vault_of(request)
    try:
        minted = await run_in_threadpool(
            personal_tokens.mint_from_form,
            vault,
            signed_in.account.id,
            form,
            client_ip(request),
        )
    except NarrowingError as exc:
        error = str(exc)
    except InvalidAuthorizationDetails as exc:
        error = str(exc.description)
    else:
        return render_page(
            request, "dashboard/personal_token_created.html", signed_in=signed_in, minted=minted
        )
    return await run_in_threadpool(
        _page,
        request,
        signed_in,
        (form.get("d0.provider") or [""])[0],
        error=f"{error.rstrip('.')}. Nothing was stored.",
        typed_name=(form.get("name") or [""])[0][:MAX_NAME],
        status_code=422,
    )
