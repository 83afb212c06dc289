"""CSRF protection for every form POST.

Signed in: the session's own token (``SignedIn.csrf_token``) goes in a hidden ``csrf_token``
field and is checked with ``await require_csrf(request)`` (a dependency returning the
``SignedIn``), or ``check_csrf(signed_in, submitted)``.

Before sign-in (the sign-in form itself, against login CSRF): a double-submit cookie,
``presession_token(request)`` to render, ``set_presession_cookie`` on the response,
and ``check_presession(request, value)``.
A failure raises ``CsrfError``, rendered as a 403 page.
"""

from __future__ import annotations

import hmac

from fastapi import Request, Response

from okap_server.authorization.tokens import new_secret
from okap_server.web.sessions import SignedIn, current_account, is_secure, vault_of

CSRF_FIELD = "csrf_token"
PRESESSION_COOKIE = "okap_presession"


class CsrfError(Exception):
    """The form did not carry this session's CSRF token."""


def check_csrf(signed_in: SignedIn, submitted: object) -> None:
    if not isinstance(submitted, str) or not submitted:
        raise CsrfError("The form is missing its security token. Reload the page and try again.")
    if not hmac.compare_digest(submitted.encode(), signed_in.csrf_token.encode()):
        raise CsrfError("The form's security token is wrong. Reload the page and try again.")


async def require_csrf(request: Request) -> SignedIn:
    """FastAPI dependency for POST routes: signed in AND the form carries the CSRF token."""
    signed_in = current_account(request)
    form = await request.form()
    check_csrf(signed_in, form.get(CSRF_FIELD))
    return signed_in


def presession_token(request: Request) -> str:
    """The double-submit token for forms shown before sign-in (the cookie's, or a new one)."""
    token = request.cookies.get(PRESESSION_COOKIE)
    if not token or len(token) > 64:
        token = new_secret(24)
    return token


def set_presession_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        PRESESSION_COOKIE,
        token,
        max_age=3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_secure(vault_of(request).settings),
    )


def check_presession(request: Request, submitted: object) -> None:
    cookie = request.cookies.get(PRESESSION_COOKIE)
    if not cookie or not isinstance(submitted, str) or not submitted:
        raise CsrfError("The form is missing its security token. Reload the page and try again.")
    if not hmac.compare_digest(cookie.encode(), submitted.encode()):
        raise CsrfError("The form's security token is wrong. Reload the page and try again.")
