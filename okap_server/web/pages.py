"""Rendering a server-side page: the Jinja environment, no-store, and the signed-in context
(the nav's count of pending requests included).

Consent, sign-in and device pages must not be cached (``Cache-Control: no-store``); framing
and referrer headers come from ``web/headers.py`` on every page.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError

from okap_server.authorization.requests import pending_for
from okap_server.context import Vault
from okap_server.web.sessions import SignedIn, optional_account, vault_of

log = logging.getLogger("okap.web")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def render_page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    signed_in: SignedIn | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    vault = vault_of(request)
    if signed_in is None:
        signed_in = optional_account(request)
    html = vault.templates.get_template(template).render(
        request_path=request.url.path,
        signed_in=signed_in,
        csrf_token=signed_in.csrf_token if signed_in else "",
        pending_count=pending_count(vault, signed_in) if signed_in else 0,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers={**NO_STORE, **(headers or {})})


def pending_count(vault: Vault, signed_in: SignedIn) -> int:
    """The nav's badge, in the page itself (the dashboard's script keeps it fresh after):
    requests waiting for this account, as the Pending page lists them. A database that
    does not answer leaves it for the script, rather than failing the page."""
    try:
        with vault.session() as session:
            return len(pending_for(session, signed_in.account.id))
    except SQLAlchemyError as exc:
        log.warning("could not count pending requests: %s", type(exc).__name__)
        return 0


def error_page(
    request: Request, title: str, message: str, *, status_code: int = 400
) -> HTMLResponse:
    return render_page(request, "error.html", status_code=status_code, title=title, message=message)
