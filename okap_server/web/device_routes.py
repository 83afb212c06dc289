"""``/device``: the person types the code shown on a device (RFC 8628 §3.3).

``verification_uri_complete`` pre-fills the code but still asks the person to confirm it
(§5.4: a pre-filled code alone must not approve anything). Wrong codes are throttled per
account and per IP (§5.1). Typing the code claims the device's request for this account
(``requests.claim``): only this account may then see and decide it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from okap_server.audit.events import record_event
from okap_server.authorization.device import find_by_user_code, normalize_user_code
from okap_server.authorization.requests import DecisionError, NotYourRequest, claim
from okap_server.web import openapi as oa
from okap_server.web.csrf import check_csrf
from okap_server.web.pages import NO_STORE, render_page
from okap_server.web.sessions import SignedIn, client_ip, current_account, vault_of
from okap_server.web.throttle import is_throttled

router = APIRouter()


@router.get("/device", include_in_schema=False)
def device_page(
    request: Request, user_code: str = "", signed_in: SignedIn = Depends(current_account)
) -> Response:
    shown = user_code[:16] if normalize_user_code(user_code) else ""
    return render_page(request, "device.html", signed_in=signed_in, user_code=shown, error=None)


@router.post(
    "/device",
    **oa.form_post(
        "Enter a device's user code (RFC 8628 §3.3)",
        None,
        done="To the consent page of the device's request",
        pages={
            400: "The code is not valid or has expired",
            429: "Too many wrong codes: wait 15 minutes",
        },
    ),
)
def device_submit(
    request: Request,
    user_code: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    signed_in: SignedIn = Depends(current_account),
) -> Response:
    check_csrf(signed_in, csrf_token)
    vault = vault_of(request)
    ip = client_ip(request)
    account_id = signed_in.account.id
    limit = vault.settings.user_code_max_failures

    def again(error: str, status_code: int) -> Response:
        return render_page(
            request,
            "device.html",
            status_code=status_code,
            signed_in=signed_in,
            user_code=user_code[:16],
            error=error,
        )

    with vault.session() as session:
        if is_throttled(session, "user_code_failed", limit, account_id=account_id, ip=ip):
            return again("Too many wrong codes. Wait 15 minutes and try again.", 429)
        row = find_by_user_code(session, user_code)
        error = "That code is not valid or has expired. Check the code on your device."
        if row is not None:
            try:
                claim(session, row, account_id, by_user_code=True)
            except NotYourRequest:
                error = "Another account of this vault already entered that code."
            except DecisionError:
                pass
            else:
                return RedirectResponse(f"/consent/{row.id}", status_code=303, headers=NO_STORE)
        record_event(session, "user_code_failed", account_id=account_id, ip=ip)
        session.commit()
        return again(error, 400)
