"""``/settings/ceilings`` and ``/keys/{id}/ceiling``: the spend ceilings above the grants."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from okap_server.dashboard import keys_routes, settings_routes
from okap_server.dashboard.web import done, form_of, not_found
from okap_server.grants.ceilings import ACCOUNT_PERIODS, CeilingError
from okap_server.manage import ceilings as manage_ceilings
from okap_server.web import openapi as oa
from okap_server.web.csrf import require_csrf
from okap_server.web.sessions import SignedIn, client_ip, vault_of

router = APIRouter()

_USD = {"type": "string", "description": "USD; empty means no ceiling"}


@router.post(
    "/settings/ceilings",
    **oa.form_post(
        "Set the account's spend ceilings, over all its grants",
        {p: _USD for p in ACCOUNT_PERIODS},
        done="Saved: to /settings",
        pages={422: "A value was refused: the form again"},
    ),
)
async def save_account_ceilings(
    request: Request, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    form = await form_of(request)
    vault, ip = vault_of(request), client_ip(request)
    try:
        await run_in_threadpool(manage_ceilings.save_account, vault, signed_in.account.id, form, ip)
    except CeilingError as exc:
        error = f"{exc}. Nothing was saved."
        return await run_in_threadpool(
            lambda: settings_routes._page(request, signed_in, ceilings_error=error, status_code=422)
        )
    return done("/settings", "ceilings")


@router.post(
    "/keys/{key_id}/ceiling",
    **oa.form_post(
        "Set a key's monthly spend ceiling, over every grant it backs",
        {"monthly": _USD},
        done="Saved: to /keys",
        pages={404: "No such key in this account", 422: "The value was refused"},
    ),
)
async def save_key_ceiling(
    request: Request, key_id: str, signed_in: SignedIn = Depends(require_csrf)
) -> Response:
    form = await form_of(request)
    vault, ip, account_id = vault_of(request), client_ip(request), signed_in.account.id
    try:
        saved = await run_in_threadpool(
            manage_ceilings.save_key, vault, account_id, key_id, form.get("monthly", ""), ip
        )
    except CeilingError as exc:
        error = (key_id, f"{exc}. Nothing was saved.")
        return await run_in_threadpool(
            lambda: keys_routes._page(request, signed_in, ceiling_error=error, status_code=422)
        )
    if saved is None:
        return not_found(request, "key")
    return done("/keys", "ceilings")
