"""``/`` (connected apps), ``/apps`` (all, with revoked and expired ones), ``/apps/{id}``
(detail with usage over time), ``/apps/{id}/limits``, ``/apps/{id}/token`` (Regenerate
token) and ``/apps/{id}/revoke``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from okap_server.authorization.capabilities import LIMIT_LABELS, LIMIT_NAMES
from okap_server.dashboard import apps, charts, usage
from okap_server.dashboard import formatting as fmt
from okap_server.dashboard.delegation import delegation_view
from okap_server.dashboard.pending import waiting
from okap_server.dashboard.web import done, form_of, not_found, notice_of
from okap_server.manage.app_tokens import GrantInactive, regenerate_token
from okap_server.prices.unpriced import unpriced_in_live_grants
from okap_server.web import openapi as oa
from okap_server.web.csrf import require_csrf
from okap_server.web.pages import render_page
from okap_server.web.sessions import SignedIn, client_ip, current_account, vault_of

router = APIRouter()

# Entry i of the grant is edited by fields prefixed "p{i}."; documented for the first.
LIMIT_FIELDS: dict[str, oa.Schema] = {
    f"p0.{name}": {"type": "string", "description": "Empty means no limit"} for name in LIMIT_NAMES
}


def _list(request: Request, signed_in: SignedIn, *, show_all: bool) -> Response:
    vault = vault_of(request)
    account_id = signed_in.account.id
    with vault.session() as session:
        views = apps.list_apps(vault, session, account_id, include_inactive=show_all)
        pending = waiting(vault, session, account_id)
        total = usage.spend_total(session, account_id)
        unpriced = unpriced_in_live_grants(
            session, vault.prices, vault.providers, vault.settings.default_limits, account_id
        )
        earlier = bool(views) or bool(
            not show_all and apps.list_apps(vault, session, account_id, include_inactive=True)
        )
    return render_page(
        request,
        "dashboard/apps.html",
        signed_in=signed_in,
        apps=views,
        show_all=show_all,
        earlier=earlier,
        pending=pending,
        total=total,
        notice=notice_of(request),
        bar=charts.usage_bar,
        unpriced_grants=unpriced,
    )


@router.get("/", include_in_schema=False)
def home(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    return _list(request, signed_in, show_all=False)


@router.get("/apps", include_in_schema=False)
def all_apps(request: Request, signed_in: SignedIn = Depends(current_account)) -> Response:
    return _list(request, signed_in, show_all=True)


@router.get("/apps/{grant_id}", include_in_schema=False)
def app_detail(
    request: Request, grant_id: str, signed_in: SignedIn = Depends(current_account)
) -> Response:
    vault = vault_of(request)
    with vault.session() as session:
        grant = apps.own_grant(session, signed_in.account.id, grant_id)
        if grant is None:
            return not_found(request, "app")
        view = apps.app_view(vault, session, grant)
        delegated = delegation_view(session, grant)
        daily = usage.daily_usage(session, grant.id)
        by_model = usage.usage_by_model(session, grant.id)
        recent = usage.recent_requests(session, grant.id)
    return render_page(
        request,
        "dashboard/app_detail.html",
        signed_in=signed_in,
        app=view,
        delegation=delegated,
        spend_chart=charts.daily_chart(daily, money=True),
        requests_chart=charts.daily_chart(daily, money=False),
        by_model=by_model,
        recent=recent,
        usd_exact=fmt.usd_exact,
        notice=notice_of(request),
        bar=charts.usage_bar,
    )


def _limits_page(
    request: Request,
    signed_in: SignedIn,
    grant_id: str,
    *,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    vault = vault_of(request)
    with vault.session() as session:
        grant = apps.own_grant(session, signed_in.account.id, grant_id)
        if grant is None:
            return not_found(request, "app")
        view = apps.app_view(vault, session, grant)
    return render_page(
        request,
        "dashboard/edit_limits.html",
        status_code=status_code,
        signed_in=signed_in,
        app=view,
        limit_names=LIMIT_NAMES,
        labels=LIMIT_LABELS,
        typed=typed,
        error=error,
        plain=fmt.plain_number,
    )


@router.get("/apps/{grant_id}/limits", include_in_schema=False)
def edit_limits_page(
    request: Request, grant_id: str, signed_in: SignedIn = Depends(current_account)
) -> Response:
    return _limits_page(request, signed_in, grant_id)


@router.post(
    "/apps/{grant_id}/limits",
    **oa.form_post(
        "Change a connected app's limits",
        LIMIT_FIELDS,
        done="Saved: to the app's page",
        pages={404: "No such app in this account", 422: "A limit was refused: the form again"},
    ),
)
async def edit_limits_submit(
    request: Request, grant_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    form = await form_of(request)
    vault = vault_of(request)
    try:
        grant = await run_in_threadpool(
            apps.edit_limits, vault, signed_in.account.id, grant_id, form, client_ip(request)
        )
    except apps.LimitsError as exc:
        return _limits_page(
            request, signed_in, grant_id, error=str(exc), typed=form, status_code=422
        )
    if grant is None:
        return not_found(request, "app")
    return done(f"/apps/{grant.id}", "limits")


@router.get("/apps/{grant_id}/revoke", include_in_schema=False)
def revoke_page(
    request: Request, grant_id: str, signed_in: SignedIn = Depends(current_account)
) -> Response:
    """Revoking cannot be undone (the app must ask again), so, like Remove key, it is a
    question first; the form on this page does it."""
    vault = vault_of(request)
    with vault.session() as session:
        grant = apps.own_grant(session, signed_in.account.id, grant_id)
        if grant is None:
            return not_found(request, "app")
        view = apps.app_view(vault, session, grant)
    return render_page(request, "dashboard/app_revoke.html", signed_in=signed_in, app=view)


@router.post(
    "/apps/{grant_id}/revoke",
    **oa.form_post(
        "Revoke a connected app's access",
        {},
        done="Revoked: to the dashboard",
        pages={404: "No such app in this account"},
    ),
)
async def revoke(
    request: Request, grant_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    vault = vault_of(request)
    grant = await run_in_threadpool(
        apps.revoke, vault, signed_in.account.id, grant_id, client_ip(request)
    )
    if grant is None:
        return not_found(request, "app")
    return done("/", "revoked")


@router.get("/apps/{grant_id}/token", include_in_schema=False)
def regenerate_page(
    request: Request, grant_id: str, signed_in: SignedIn = Depends(current_account)
) -> Response:
    """The old token stops working at once, so the button asks first."""
    vault = vault_of(request)
    with vault.session() as session:
        grant = apps.own_grant(session, signed_in.account.id, grant_id)
        if grant is None:
            return not_found(request, "app")
        view = apps.app_view(vault, session, grant)
    return _token_page(request, signed_in, view)


def _token_page(
    request: Request,
    signed_in: SignedIn,
    view: apps.AppView | None,
    *,
    token: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    base_url = f"{vault_of(request).settings.effective_public_url}/v1"
    return render_page(
        request,
        "dashboard/app_token.html",
        status_code=status_code,
        signed_in=signed_in,
        app=view,
        token=token,
        error=error,
        base_url=base_url,
    )


@router.post(
    "/apps/{grant_id}/token",
    **oa.form_post(
        "Regenerate a connected app's token",
        {},
        done="(not used)",
        pages={
            200: "The new token, shown once (no-store)",
            404: "No such app in this account",
            409: "The app's access was revoked or has expired",
        },
    ),
)
async def regenerate(
    request: Request, grant_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    """Answered with the page itself, never a redirect: the token must not be in a URL."""
    vault = vault_of(request)
    account_id = signed_in.account.id
    try:
        issued = await run_in_threadpool(
            lambda: regenerate_token(
                vault, account_id, grant_id, ip=client_ip(request), via="dashboard"
            )
        )
    except GrantInactive as exc:
        with vault.session() as session:
            grant = apps.own_grant(session, account_id, grant_id)
            view = apps.app_view(vault, session, grant) if grant else None
        message = str(exc)
        return _token_page(
            request, signed_in, view, error=message[:1].upper() + message[1:] + ".", status_code=409
        )
    if issued is None:
        return not_found(request, "app")
    grant, token = issued
    with vault.session() as session:
        view = apps.app_view(vault, session, grant)
    return _token_page(request, signed_in, view, token=token)
