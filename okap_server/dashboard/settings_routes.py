"""``/settings``: default limits, auto-opening the consent page, changing the password."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from okap_server.accounts.models import Account
from okap_server.authorization.defaults import default_limits_for
from okap_server.dashboard import ceilings
from okap_server.dashboard import formatting as fmt
from okap_server.dashboard import settings as prefs
from okap_server.dashboard.web import done, form_of, notice_of
from okap_server.web import openapi as oa
from okap_server.web.csrf import require_csrf
from okap_server.web.pages import render_page
from okap_server.web.sessions import SignedIn, client_ip, current_account, vault_of

router = APIRouter()


def _page(
    request: Request,
    signed_in: SignedIn,
    *,
    limits_error: str | None = None,
    password_error: str | None = None,
    ceilings_error: str | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    vault = vault_of(request)
    with vault.session() as session:
        limits = default_limits_for(session, signed_in.account.id, vault.settings)
        account_ceilings = ceilings.account_views(session, signed_in.account.id)
    values = {k: fmt.plain_number(v) for k, v in limits.model_dump().items()}
    if typed:
        values.update({k: typed.get(k, "") for k in prefs.DEFAULT_LIMIT_FIELDS})
    return render_page(
        request,
        "dashboard/settings.html",
        status_code=status_code,
        signed_in=signed_in,
        limits=values,
        auto_open=prefs.auto_open_consent(signed_in.account),
        limits_error=limits_error,
        password_error=password_error,
        ceilings=account_ceilings,
        ceilings_error=ceilings_error,
        notice=notice_of(request),
        poll_seconds=vault.settings.dashboard_poll_seconds,
    )


@router.get("/settings", include_in_schema=False)
def settings_page(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    return _page(request, signed_in)


@router.post(
    "/settings/preferences",
    **oa.form_post(
        "Save default limits and whether the consent page opens by itself",
        {
            **{
                name: {"type": "string", "description": "Empty means no default"}
                for name in prefs.DEFAULT_LIMIT_FIELDS
            },
            "auto_open": {"type": "string", "enum": ["1"]},
        },
        done="Saved: to /settings",
        pages={422: "A value was refused: the form again"},
    ),
)
async def save_preferences(
    request: Request, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    form = await form_of(request)
    try:
        limits = prefs.parse_default_limits(form)
    except prefs.PreferencesError as exc:
        return _page(request, signed_in, limits_error=str(exc), typed=form, status_code=422)

    def save() -> None:
        with vault_of(request).session() as session:
            account = session.get(Account, signed_in.account.id)
            assert account is not None
            prefs.save_preferences(session, account, limits, form.get("auto_open") == "1")

    await run_in_threadpool(save)
    return done("/settings", "settings")


@router.post(
    "/settings/password",
    **oa.form_post(
        "Change this account's password (signs out its other sessions)",
        {"current_password": oa.TEXT, "new_password": oa.TEXT, "confirm_password": oa.TEXT},
        done="Changed: to /settings",
        pages={422: "Refused: the form again, with the reason"},
    ),
)
async def change_password(
    request: Request, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    form = await form_of(request)

    def change() -> None:
        with vault_of(request).session() as session:
            account = session.get(Account, signed_in.account.id)
            assert account is not None
            prefs.change_password(
                session,
                account,
                form.get("current_password", ""),
                form.get("new_password", ""),
                form.get("confirm_password", ""),
                keep_session=signed_in.session_hash,
                ip=client_ip(request),
            )

    try:
        await run_in_threadpool(change)
    except prefs.PreferencesError as exc:
        return _page(request, signed_in, password_error=str(exc), status_code=422)
    return done("/settings", "password")
