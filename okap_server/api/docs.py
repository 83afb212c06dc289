"""How /api/v1 operations are published in /openapi.json: the scope each one needs
(``x-okap-scope``), and every status it can answer, each an RFC 9457 problem details
document (``application/problem+json``), so clients and tests can be table-driven."""

from __future__ import annotations

from typing import Any

from okap_server.api.auth import SCOPE_EXTENSION
from okap_server.api.problems import MEDIA_TYPE

API_TAG = "Management API"
PROBLEM: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `type` is stable per error.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:okap:problem:not-found"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
}
_WORDS = {
    400: "Bad request, or a token in the URL (refused, RFC 6750 §5.3)",
    401: "No valid okapm_ management token",
    403: "The token lacks the scope this operation needs",
    404: "No such resource (or not this account's)",
    408: "The body did not arrive in time",
    409: "The resource is in use",
    412: "If-Match is not the current ETag",
    413: "The body is too large",
    415: "Not a JSON body",
    422: "The request is not valid; the problem names the field",
    428: "If-Match is required",
    429: "Too many requests with this token",
    502: "The provider could not be reached",
}
ALWAYS = (400, 401, 403, 422, 429)
BODY = (408, 413, 415)


def problem(status: int) -> dict[str, Any]:
    return {"description": _WORDS[status], "content": {MEDIA_TYPE: {"schema": PROBLEM}}}


def op(scope: str, *statuses: int, body: bool = False) -> dict[str, Any]:
    """Decorator arguments for one operation needing ``scope``."""
    codes = sorted({*ALWAYS, *statuses, *(BODY if body else ())})
    return {
        "tags": [API_TAG],
        "openapi_extra": {SCOPE_EXTENSION: scope},
        "responses": {code: problem(code) for code in codes},
    }
