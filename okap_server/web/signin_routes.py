"""GET/POST /signin and POST /signout.

Failures are throttled so that a stranger cannot lock the owner out
(``web/signin_throttle.py``); every sign-in, failed sign-in and sign-out goes to the audit
trail.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from okap_server.accounts.service import authenticate, find_account
from okap_server.audit.events import record_event
from okap_server.authorization.capacity import retry_after
from okap_server.web import openapi as oa
from okap_server.web.csrf import (
    check_presession,
    presession_token,
    require_csrf,
    set_presession_cookie,
)
from okap_server.web.pages import NO_STORE, render_page
from okap_server.web.sessions import (
    SignedIn,
    client_ip,
    end_session,
    optional_account,
    replace_session,
    safe_next,
    set_session_cookie,
    start_session,
    vault_of,
)
from okap_server.web.signin_throttle import SigninThrottle, refusal_text

router = APIRouter()


def _form(
    request: Request,
    *,
    next_url: str,
    username: str = "",
    error: str | None = None,
    created: bool = False,
    status_code: int = 200,
) -> Response:
    nonce, token = presession_token(request)
    response = render_page(
        request,
        "signin.html",
        status_code=status_code,
        next_url=next_url,
        username=username,
        error=error,
        created=created,
        presession=token,
    )
    set_presession_cookie(request, response, nonce)
    return response


@router.get("/signin", include_in_schema=False)
def signin_page(request: Request, next: str = "/", created: str = "") -> Response:
    """``created`` is set by the setup page: the new owner is told the account exists and
    finds its name filled in, so the first sign-in is just the password."""
    next_url = safe_next(next)
    if optional_account(request) is not None:
        return RedirectResponse(next_url, status_code=303, headers=NO_STORE)
    name = created.strip()[:64]
    return _form(request, next_url=next_url, username=name, created=bool(name))


@router.post(
    "/signin",
    **oa.form_post(
        "Sign in (the form carries the okap_presession cookie's value as csrf_token)",
        None,
        signed_in=False,
        done="Signed in: to `next` (a path on this vault), with the session cookie",
        pages={
            401: "Wrong username or password",
            403: "The form's token does not match its cookie",
            429: "Too many failed sign-ins from this browser or address: wait (Retry-After)",
        },
    ),
)
def signin_submit(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    check_presession(request, csrf_token)
    vault = vault_of(request)
    next_url = safe_next(next)
    ip = client_ip(request)
    username = username.strip()
    with vault.session() as session:
        target = find_account(session, username) if username else None
        target_id = target.id if target else None
        throttle = SigninThrottle(request, session, target_id)
        if wait := throttle.wait():
            refused = _form(
                request,
                next_url=next_url,
                username=username,
                error=refusal_text(wait),
                status_code=429,
            )
            refused.headers["Retry-After"] = str(retry_after(wait))
            return refused
        account = authenticate(session, username, password) if username else None
        if account is None:
            throttle.failed()
            session.commit()
            return _form(
                request,
                next_url=next_url,
                username=username,
                error="Wrong username or password.",
                status_code=401,
            )
        record_event(session, "signin", account_id=account.id, ip=ip)
        session.commit()
    replace_session(request)  # a fresh session id on every sign-in (no fixation)
    value = start_session(vault, account, ip)
    response = RedirectResponse(next_url, status_code=303, headers=NO_STORE)
    set_session_cookie(response, vault.settings, value)
    throttle.remember(response, account.id)
    return response


@router.post(
    "/signout",
    **oa.form_post("Sign out this browser", {}, done="Signed out: to /signin", pages={}),
)
def signout(request: Request, signed_in: Annotated[SignedIn, Depends(require_csrf)]) -> Response:
    response = RedirectResponse("/signin", status_code=303, headers=NO_STORE)
    account_id = end_session(request, response)
    with vault_of(request).session() as session:
        record_event(session, "signout", account_id=account_id, ip=client_ip(request))
        session.commit()
    return response
