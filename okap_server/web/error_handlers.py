"""The one place protocol and page exceptions become responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from okap_server.authorization.errors import OAuthError, render
from okap_server.web.csrf import CsrfError
from okap_server.web.pages import NO_STORE, error_page
from okap_server.web.sessions import SignInRequired


def install(app: FastAPI) -> None:
    """Register the handlers on the app (called once by ``create_app``)."""

    async def oauth_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OAuthError)
        status, body, headers = render(exc, okap=request.url.path.startswith("/okap/"))
        return JSONResponse(body, status_code=status, headers=headers)

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(exc.location, status_code=303, headers=NO_STORE)

    async def csrf_error(request: Request, exc: Exception) -> Response:
        return error_page(request, "Security check failed", str(exc), status_code=403)

    app.add_exception_handler(OAuthError, oauth_error)
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(CsrfError, csrf_error)
