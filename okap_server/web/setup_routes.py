"""``/setup``: the one-time link that creates a new vault's owner account.

The link's token (``accounts/setup.py``) authorises the claim. The form also carries a CSRF
value bound to that token and to a cookie nonce, so a form posted from another site or
another browser is refused.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from okap_server.accounts.passwords import MIN_PASSWORD_LENGTH
from okap_server.accounts.service import AccountError
from okap_server.accounts.setup import (
    AlreadySetUp,
    SetupError,
    check_setup_token,
    claim_vault,
    setup_csrf_token,
)
from okap_server.web import cookies
from okap_server.web import openapi as oa
from okap_server.web.pages import NO_STORE, error_page, render_page
from okap_server.web.sessions import client_ip, vault_of

router = APIRouter()

SETUP_COOKIE = cookies.SETUP  # ``__Host-okap_setup`` under https


def _failure(request: Request, exc: SetupError) -> HTMLResponse:
    if isinstance(exc, AlreadySetUp):
        return error_page(request, "Already set up", str(exc), status_code=410)
    return error_page(request, "Setup link not valid", str(exc), status_code=403)


def _form(
    request: Request,
    token: str,
    nonce: str,
    *,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    response = render_page(
        request,
        "setup.html",
        status_code=status_code,
        setup_token=token,
        setup_csrf=setup_csrf_token(token, nonce),
        username=username,
        error=error,
        min_password_length=MIN_PASSWORD_LENGTH,
    )
    cookies.set_cookie(
        response, vault_of(request).settings, SETUP_COOKIE, nonce, max_age=3600, samesite="strict"
    )
    return response


def _nonce(request: Request) -> str:
    return request.cookies.get(cookies.cookie_name(vault_of(request).settings, SETUP_COOKIE), "")


@router.get("/setup", include_in_schema=False)
def setup_form(request: Request, token: str = "") -> Response:
    vault = vault_of(request)
    try:
        with vault.session() as session:
            check_setup_token(session, token)
    except SetupError as exc:
        return _failure(request, exc)
    nonce = _nonce(request) or secrets.token_urlsafe(24)
    return _form(request, token, nonce[:64])


@router.post(
    "/setup",
    **oa.form_post(
        "Claim a new vault with its one-time setup link: create the owner account",
        None,
        signed_in=False,
        done="Created: to /signin?created=USERNAME",
        pages={
            400: "The username or password was refused",
            403: "The setup link or the form's token is not valid",
            410: "This vault is already set up",
        },
    ),
)
def setup_submit(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    vault = vault_of(request)
    nonce = _nonce(request)
    expected = setup_csrf_token(token, nonce) if nonce and token else ""
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return error_page(
            request,
            "Form expired",
            "The form's security token is missing or wrong. Open the setup link again.",
            status_code=403,
        )
    try:
        with vault.session() as session:
            claim_vault(session, token, username.strip(), password, ip=client_ip(request))
    except SetupError as exc:
        return _failure(request, exc)
    except AccountError as exc:
        return _form(request, token, nonce, username=username, error=str(exc), status_code=400)
    # The sign-in page says the account exists and fills in its name (not a secret).
    created = urlencode({"created": username.strip()})
    response = RedirectResponse(f"/signin?{created}", status_code=303, headers=NO_STORE)
    cookies.expire_cookie(response, vault.settings, SETUP_COOKIE)
    return response
