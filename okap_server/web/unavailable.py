"""What a replica answers while it cannot reach its database: 503, in the caller's shape.

Connection loss (a PostgreSQL restart, a network cut, a pool exhausted, SQLite locked past its
busy timeout) is temporary: the engine's pool re-connects on its own (``pool_pre_ping``), so
the next request after the database returns is served normally. Until then every surface
says so clearly instead of answering 500:

- ``/v1/...`` (the proxy) answers in the provider's own shape (``ProxyService``, not here);
- ``/oauth/...``, ``/okap/...`` and ``/.well-known/...`` answer RFC 6749 §5.2 JSON with the
  code ``temporarily_unavailable`` (RFC 6749 §4.1.2.1), and ``Retry-After``;
- pages answer an error page, rendered without touching the database;
- ``/readyz`` answers 503 (``web/health.py``), so a load balancer stops sending traffic.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from okap_server.authorization.errors import TemporarilyUnavailable, render
from okap_server.context import Vault
from okap_server.web.pages import NO_STORE

log = logging.getLogger("okap.web")

RETRY_AFTER_SECONDS = 5
JSON_PREFIXES = ("/oauth/", "/okap/", "/.well-known/", "/v1/", "/api/")
TITLE = "The vault is unavailable"
MESSAGE = (
    "This vault cannot reach its database right now. Nothing was changed. "
    "Try again in a few seconds."
)


def is_connection_loss(exc: BaseException) -> bool:
    """A database that is away (retry later), not a bug in a statement."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def unavailable_response(request: Request) -> Response:
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    path = request.url.path
    if path.startswith(JSON_PREFIXES) or "json" in request.headers.get("accept", ""):
        status, body, headers = render(
            TemporarilyUnavailable(MESSAGE, headers=retry), okap=path.startswith("/okap/")
        )
        return JSONResponse(body, status_code=status, headers=headers)
    vault: Vault = request.app.state.vault
    html = vault.templates.get_template("error.html").render(
        request_path=path, signed_in=None, csrf_token="", title=TITLE, message=MESSAGE
    )
    return HTMLResponse(html, status_code=503, headers={**NO_STORE, **retry})


def install(app: FastAPI) -> None:
    """Answer 503 for a lost database; any other database error stays a 500 (a bug)."""

    async def database_error(request: Request, exc: Exception) -> Response:
        if not is_connection_loss(exc):
            raise exc
        log.error("database unavailable (%s) on %s", type(exc).__name__, request.url.path)
        return unavailable_response(request)

    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(PoolTimeout, database_error)
