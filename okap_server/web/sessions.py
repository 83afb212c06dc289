"""Dashboard sessions: a random cookie, only its SHA-256 stored in ``web_session``.

API for every page module (consent, device, dashboard):

- ``current_account`` — FastAPI dependency returning ``SignedIn``; when nobody is signed in
  it raises ``SignInRequired``, which the app renders as a 303 to ``/signin?next=<path>``.
- ``optional_account(request)`` — ``SignedIn | None``, no redirect.
- ``start_session(vault, account, ip)`` / ``set_session_cookie(response, settings, value)``
  — sign in; ``end_session(request, response)`` — sign out (the row is deleted server-side).
- ``SignedIn.csrf_token`` — the per-session CSRF token; see ``web/csrf.py``.

The cookie is HttpOnly, SameSite=Lax, Path=/, and Secure (with the ``__Host-`` prefix) when
the pages are served over https (``web/cookies.py``). It is only ever set on the pages' host
(``web/page_origin.py``), never on a loopback IP literal an app's redirect could share.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from fastapi import Request, Response
from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from okap_server.accounts.models import Account, WebSession
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.grants.tokens import new_secret, token_hash
from okap_server.settings import Settings
from okap_server.web import cookies

log = logging.getLogger(__name__)


class SignInRequired(Exception):
    """Raised by ``current_account``; rendered as a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url

    @property
    def location(self) -> str:
        return f"/signin?next={quote(self.next_url, safe='/')}"


@dataclass(frozen=True)
class SignedIn:
    """The signed-in account of this request and its session's CSRF token."""

    account: Account
    session_hash: str
    csrf_token: str


def vault_of(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


def is_secure(settings: Settings) -> bool:
    return cookies.is_secure(settings)


def cookie_name(settings: Settings) -> str:
    """The session cookie's name: ``__Host-okap_session`` under https, else ``okap_session``."""
    return cookies.cookie_name(settings, cookies.SESSION)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def safe_next(value: str | None, default: str = "/") -> str:
    """Only same-site paths: never ``//host`` or a scheme (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(c in value for c in "\r\n\t") or len(value) > 2048:
        return default
    return value


def start_session(vault: Vault, account: Account, ip: str | None) -> str:
    """Create a session row; returns the cookie value (shown once, stored as a hash)."""
    value = new_secret(32)
    with vault.session() as session:
        session.add(
            WebSession(
                id_hash=token_hash(value),
                account_id=account.id,
                csrf_token=new_secret(24),
                expires_at=utcnow() + timedelta(seconds=vault.settings.session_ttl_seconds),
                ip=ip,
            )
        )
        session.commit()
    return value


def set_session_cookie(response: Response, settings: Settings, value: str) -> None:
    cookies.set_cookie(
        response, settings, cookies.SESSION, value, max_age=settings.session_ttl_seconds
    )


def optional_account(request: Request) -> SignedIn | None:
    """The signed-in account, or None (expired sessions and disabled accounts count as none)."""
    vault = vault_of(request)
    value = request.cookies.get(cookie_name(vault.settings))
    if not value or len(value) > 128:
        return None
    digest = token_hash(value)
    with vault.session() as session:
        row = session.get(WebSession, digest)
        if row is None or row.expires_at <= utcnow():
            return None
        account = session.get(Account, row.account_id)
        if account is None or account.disabled:
            return None
        return SignedIn(account=account, session_hash=digest, csrf_token=row.csrf_token)


def current_account(request: Request) -> SignedIn:
    """FastAPI dependency: the signed-in account, or a redirect to /signin?next=<this page>."""
    signed_in = optional_account(request)
    if signed_in is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(safe_next(path))
    return signed_in


def replace_session(request: Request) -> None:
    """Delete the session this browser presents, if any (before starting a new one)."""
    value = request.cookies.get(cookie_name(vault_of(request).settings))
    if value:
        revoke_session(vault_of(request), value)


def forget_session(vault: Vault, value: str) -> None:
    """``revoke_session`` at best effort, for a cookie seen where it should not be: a
    database that is down must not turn a redirect into an error (the cookie is expired
    in the browser all the same, and the session ends with its TTL)."""
    try:
        revoke_session(vault, value)
    except SQLAlchemyError:
        log.warning("could not revoke a session seen on the wrong host: database unavailable")


def revoke_session(vault: Vault, value: str) -> None:
    """Delete the session whose cookie value is ``value`` (nothing if there is none)."""
    if len(value) > 128:
        return
    with vault.session() as session:
        session.execute(delete(WebSession).where(col(WebSession.id_hash) == token_hash(value)))
        session.commit()


def end_session(request: Request, response: Response) -> str | None:
    """Delete this browser's session server-side and clear its cookie; returns the account id."""
    vault = vault_of(request)
    signed_in = optional_account(request)
    if signed_in is not None:
        with vault.session() as session:
            session.execute(
                delete(WebSession).where(col(WebSession.id_hash) == signed_in.session_hash)
            )
            session.commit()
    cookies.expire_cookie(response, vault.settings, cookies.SESSION)
    return signed_in.account.id if signed_in else None
