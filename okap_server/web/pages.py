"""Rendering a server-side page: the Jinja environment, no-store, and the signed-in context.

Consent, sign-in and device pages must not be cached (``Cache-Control: no-store``); framing
and referrer headers come from ``web/headers.py`` on every page.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from okap_server.web.sessions import SignedIn, optional_account, vault_of

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
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers={**NO_STORE, **(headers or {})})


def error_page(
    request: Request, title: str, message: str, *, status_code: int = 400
) -> HTMLResponse:
    return render_page(request, "error.html", status_code=status_code, title=title, message=message)
