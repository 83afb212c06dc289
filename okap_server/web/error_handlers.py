"""The one place protocol and page exceptions become responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

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

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404 and wants_a_page(request):
            message = "There is no page at this address. It may have moved, or the link is wrong."
            return error_page(request, "Page not found", message, status_code=404)
        return await http_exception_handler(request, exc)

    async def favicon() -> Response:
        # Browsers ask for /favicon.ico before (or instead of) reading the page's link.
        return RedirectResponse("/static/favicon.svg", status_code=301)

    app.add_api_route("/favicon.ico", favicon, include_in_schema=False)
    app.add_exception_handler(HTTPException, not_found)
    app.add_exception_handler(OAuthError, oauth_error)
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(CsrfError, csrf_error)


# Machines' paths: an SDK, the proxy and OAuth clients read JSON errors there, whatever
# they accept.
API_PREFIXES = ("/v1/", "/okap/", "/oauth/", "/.well-known/", "/static/")


def wants_a_page(request: Request) -> bool:
    """A browser navigating (it asks for HTML) to a path that is not an API's."""
    if request.method not in ("GET", "HEAD") or request.url.path.startswith(API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")
