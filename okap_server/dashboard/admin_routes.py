"""``/admin``: accounts of a team vault. Admins only; others get a 403 page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from okap_server.accounts.models import Account
from okap_server.accounts.passwords import MIN_PASSWORD_LENGTH
from okap_server.dashboard import admin
from okap_server.dashboard.web import done, form_of, not_found, notice_of
from okap_server.manage import accounts
from okap_server.web import openapi as oa
from okap_server.web.csrf import require_csrf
from okap_server.web.pages import error_page, render_page
from okap_server.web.sessions import SignedIn, client_ip, current_account, vault_of

router = APIRouter()

ADMIN_PAGES = {
    403: "Not an admin, or the CSRF token is wrong",
    404: "No such account",
    422: "Refused (for example: your own account): the page again",
}


def _forbidden(request: Request) -> Response:
    return error_page(
        request, "Admins only", "Only an admin of this vault can manage accounts.", status_code=403
    )


def _page(
    request: Request,
    signed_in: SignedIn,
    *,
    error: str | None = None,
    typed_username: str = "",
    status_code: int = 200,
) -> Response:
    with vault_of(request).session() as session:
        views = admin.accounts(session, signed_in.account.id)
    return render_page(
        request,
        "dashboard/admin.html",
        status_code=status_code,
        signed_in=signed_in,
        accounts=views,
        error=error,
        typed_username=typed_username,
        min_password_length=MIN_PASSWORD_LENGTH,
        notice=notice_of(request),
    )


@router.get("/admin", include_in_schema=False)
def admin_page(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    if not signed_in.account.is_admin:
        return _forbidden(request)
    return _page(request, signed_in)


async def _act(
    request: Request,
    signed_in: SignedIn,
    action: Callable[[Any, Account, dict[str, str]], Any],
    notice: str,
) -> Response:
    if not signed_in.account.is_admin:
        return _forbidden(request)
    form = await form_of(request)
    vault = vault_of(request)

    def run() -> Any:
        with vault.session() as session:
            me = session.get(Account, signed_in.account.id)
            assert me is not None
            return action(session, me, form)

    try:
        await run_in_threadpool(run)
    except LookupError:
        return not_found(request, "account")
    except accounts.AdminError as exc:
        return _page(
            request,
            signed_in,
            error=str(exc),
            typed_username=form.get("username", ""),
            status_code=422,
        )
    return done("/admin", notice)


@router.post(
    "/admin/accounts",
    **oa.form_post(
        "Create an account (admins only)",
        {
            "username": oa.TEXT,
            "password": oa.TEXT,
            "is_admin": {"type": "string", "enum": ["1"]},
        },
        done="Created: to /admin",
        pages={403: "Not an admin, or the CSRF token is wrong", 422: "Refused: the form again"},
    ),
)
async def add_account(request: Request, signed_in: SignedIn = Depends(require_csrf)) -> Response:
    ip = client_ip(request)
    return await _act(
        request,
        signed_in,
        lambda s, me, f: accounts.add(
            s, me, f.get("username", ""), f.get("password", ""), f.get("is_admin") == "1", ip
        ),
        "account_added",
    )


@router.post(
    "/admin/accounts/{account_id}/disable",
    **oa.form_post(
        "Disable an account: sign it out everywhere and revoke its apps (admins only)",
        {},
        done="Disabled: to /admin",
        pages=ADMIN_PAGES,
    ),
)
async def disable(
    request: Request, account_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    ip = client_ip(request)
    return await _act(
        request,
        signed_in,
        lambda s, me, f: accounts.set_disabled(s, me, account_id, True, ip),
        "account_disabled",
    )


@router.post(
    "/admin/accounts/{account_id}/enable",
    **oa.form_post(
        "Enable an account (admins only)", {}, done="Enabled: to /admin", pages=ADMIN_PAGES
    ),
)
async def enable(
    request: Request, account_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    ip = client_ip(request)
    return await _act(
        request,
        signed_in,
        lambda s, me, f: accounts.set_disabled(s, me, account_id, False, ip),
        "account_enabled",
    )


@router.post(
    "/admin/accounts/{account_id}/password",
    **oa.form_post(
        "Reset an account's password and sign it out everywhere (admins only)",
        {"password": oa.TEXT},
        done="Reset: to /admin",
        pages=ADMIN_PAGES,
    ),
)
async def reset_password(
    request: Request, account_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    ip = client_ip(request)
    return await _act(
        request,
        signed_in,
        lambda s, me, f: accounts.reset_password(s, me, account_id, f.get("password", ""), ip),
        "account_password",
    )
