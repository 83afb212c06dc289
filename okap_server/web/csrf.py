"""CSRF protection for every form POST.

Signed in: the session's own token (``SignedIn.csrf_token``) goes in a hidden ``csrf_token``
field and is checked with ``await require_csrf(request)`` (a dependency returning the
``SignedIn``), or ``check_csrf(signed_in, submitted)``.

Before sign-in (the sign-in form itself, against login CSRF): the ``okap_presession`` cookie
holds a random nonce and the form carries ``salt.HMAC(server key, salt|nonce)`` with a fresh
random salt per render: ``presession_token`` to render, ``set_presession_cookie`` on the
response, ``check_presession(request, value)`` (recomputes with the token's own salt). A
cookie planted by another origin (cookies are not isolated by port, RFC 6265 §8.5) is
useless without the vault's own matching form value. The salt matters because the caller
chooses the cookie: an unsalted HMAC of it would be a stable value per master key, the same
on every replica and restart, which fingerprints the vault's key to anyone who asks. It is
the third layer: page POSTs from another origin are refused first (``web/page_origin.py``),
and the pages live on a host no loopback redirect target shares. A failure raises
``CsrfError``, rendered as a 403 page.
"""

from __future__ import annotations

import hmac

from fastapi import Request, Response

from okap_server.grants.tokens import new_secret
from okap_server.web import cookies
from okap_server.web.sessions import SignedIn, current_account, vault_of

CSRF_FIELD = "csrf_token"
PRESESSION_COOKIE = cookies.PRESESSION  # its name under https is ``__Host-okap_presession``
PRESESSION_TTL_SECONDS = 3600
MAX_NONCE = 64
SALT_BYTES = 16
MAX_SALT = 32  # a 16-byte salt is 22 characters of URL-safe base64


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


def _presession_nonce(request: Request) -> str | None:
    nonce = request.cookies.get(cookies.cookie_name(vault_of(request).settings, PRESESSION_COOKIE))
    return nonce if nonce and len(nonce) <= MAX_NONCE else None


def _form_value(request: Request, nonce: str, salt: str) -> str:
    """``salt.HMAC(key, salt|nonce)``: the salt has no ``|`` or ``.`` (URL-safe base64)."""
    key = vault_of(request).keyring.mac_key("okap-presession-v1")
    mac = hmac.new(key, f"{salt}|{nonce}".encode(), "sha256").hexdigest()
    return f"{salt}.{mac}"


def presession_token(request: Request) -> tuple[str, str]:
    """(cookie nonce, form value) for a form shown before sign-in: the browser's nonce, or a
    new one; the form value is the vault's salted HMAC of it, which no other origin can
    compute, and which differs on every render (no stable value to compare vaults by)."""
    nonce = _presession_nonce(request) or new_secret(24)
    return nonce, _form_value(request, nonce, new_secret(SALT_BYTES))


def set_presession_cookie(request: Request, response: Response, nonce: str) -> None:
    """SameSite=Strict: the nonce is only ever needed by the vault's own sign-in form."""
    cookies.set_cookie(
        response,
        vault_of(request).settings,
        PRESESSION_COOKIE,
        nonce,
        max_age=PRESESSION_TTL_SECONDS,
        samesite="strict",
    )


def check_presession(request: Request, submitted: object) -> None:
    nonce = _presession_nonce(request)
    if not nonce or not isinstance(submitted, str) or not submitted:
        raise CsrfError("The form is missing its security token. Reload the page and try again.")
    salt = submitted.split(".", 1)[0][:MAX_SALT]
    if not hmac.compare_digest(_form_value(request, nonce, salt).encode(), submitted.encode()):
        raise CsrfError("The form's security token is wrong. Reload the page and try again.")
