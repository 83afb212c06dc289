"""Problem details (RFC 9457) for /api/v1: one exception class per error, rendered here.

Each class has a stable ``type`` URI (``urn:okap:problem:<slug>``, RFC 9457 §3.1.1), its
HTTP status and a fixed ``title``; ``detail`` says what was wrong and never holds a secret
(a field's value is never echoed, only its name).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

API_PREFIX = "/api/"
MEDIA_TYPE = "application/problem+json"
NO_STORE = {"Cache-Control": "no-store"}


class ApiProblem(Exception):
    """Base: subclasses fix ``status``, ``slug`` and ``title``."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str) -> dict[str, Any]:
        return {
            "type": f"urn:okap:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            **self.extra,
        }


class BadRequest(ApiProblem):
    pass


class Unauthorized(ApiProblem):
    status, slug, title = 401, "unauthorized", "A valid okapm_ management token is required"


class TokenInQuery(ApiProblem):
    """RFC 6750 §5.3: a bearer token in a URL ends up in logs and histories."""

    status, slug, title = 400, "token-in-query", "Tokens are not accepted in the URL"


class MissingScope(ApiProblem):
    status, slug, title = 403, "insufficient-scope", "The token lacks the scope this needs"


class NotFound(ApiProblem):
    status, slug, title = 404, "not-found", "No such resource"


class Conflict(ApiProblem):
    status, slug, title = 409, "conflict", "The resource is in use"


class PreconditionFailed(ApiProblem):
    """RFC 9110 §13.1.1: the If-Match ETag is not the current one."""

    status, slug, title = 412, "precondition-failed", "The resource changed since you read it"


class PreconditionRequired(ApiProblem):
    """RFC 6585 §3: a PATCH must name the version it changes (If-Match)."""

    status, slug, title = 428, "precondition-required", "If-Match is required"


class TooLarge(ApiProblem):
    status, slug, title = 413, "content-too-large", "The body is too large"


class BodyTimedOut(ApiProblem):
    status, slug, title = 408, "body-timeout", "The body did not arrive in time"


class UnsupportedBody(ApiProblem):
    status, slug, title = 415, "unsupported-media-type", "Send the body as application/json"


BODY_REFUSALS: dict[int, type[ApiProblem]] = {
    408: BodyTimedOut,
    413: TooLarge,
    415: UnsupportedBody,
}


class Invalid(ApiProblem):
    status, slug, title = 422, "invalid-request", "The request is not valid"


class RateLimited(ApiProblem):
    status, slug, title = 429, "rate-limited", "Too many requests with this token"


class Unavailable(ApiProblem):
    status, slug, title = 502, "upstream-failed", "The provider could not be reached"


_HTTP = {404: NotFound, 405: BadRequest, 413: TooLarge}


def render(problem: ApiProblem, path: str) -> Response:
    return JSONResponse(
        problem.body(path),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers={**NO_STORE, **problem.headers},
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_problem(exc: RequestValidationError) -> Invalid:
    """The first error, naming the field (never its value: it may be a secret)."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = _field(tuple(first.get("loc", ())))
    kind = str(first.get("type", ""))
    reason = "unknown field" if kind == "extra_forbidden" else str(first.get("msg", "invalid"))
    return Invalid(f"{where}: {reason}", field=where)


def install(app: FastAPI) -> None:
    """API problems everywhere; validation and HTTP errors as problems under /api/ only
    (the other routes keep FastAPI's and the pages' own handlers: the HTTP error handler
    installed before this one, e.g. the pages' styled 404, still answers off /api/)."""
    earlier = app.exception_handlers.get(StarletteHTTPException)

    async def api_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        return render(exc, request.url.path)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if request.url.path.startswith(API_PREFIX):
            return render(validation_problem(exc), request.url.path)
        return await request_validation_exception_handler(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if request.url.path.startswith(API_PREFIX):
            kind = _HTTP.get(exc.status_code, BadRequest)
            problem = kind(str(exc.detail))
            body = problem.body(request.url.path) | {"status": exc.status_code}
            return JSONResponse(
                body, status_code=exc.status_code, media_type=MEDIA_TYPE, headers=NO_STORE
            )
        if earlier is not None:
            answer = earlier(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        return await http_exception_handler(request, exc)

    app.add_exception_handler(ApiProblem, api_problem)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
