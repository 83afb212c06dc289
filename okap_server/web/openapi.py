"""The pieces of the published OpenAPI description (``GET /openapi.json``).

The protocol routes read their form or JSON bodies themselves (so a bad request stays an
RFC 6749 §5.2 error, never FastAPI's 422), so their request bodies are described here and
attached with ``openapi_extra``. Responses are described per status code, with the media
type each one really has: JSON for the protocol, HTML pages and bodiless 303 redirects for
the dashboard forms. Nothing here changes what a route answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi.responses import HTMLResponse, RedirectResponse

from okap_server.authorization.details import MODEL_PATTERN
from okap_server.grants.capabilities import CAPABILITIES, COUNT_LIMITS, SPEND_LIMITS

Schema = dict[str, Any]
Responses = dict[int | str, dict[str, Any]]

TEXT: Schema = {"type": "string"}
URL: Schema = {"type": "string", "format": "uri"}
FORM = "application/x-www-form-urlencoded"
PROTOCOL_TAG = "OAuth 2.0 and OKAP"
DASHBOARD_TAG = "Dashboard forms"

OAUTH_ERROR: Schema = {
    "title": "OAuthError",
    "description": "RFC 6749 §5.2 error. On /okap/ paths it also carries "
    '`"okap": "1.0"` and `"status": "error"`.',
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "examples": ["invalid_request"]},
        "error_description": TEXT,
        "okap": {"type": "string", "enum": ["1.0"]},
        "status": {"type": "string", "enum": ["error"]},
    },
}
LIMITS: Schema = {
    "type": "object",
    "description": "Spend limits are USD; count limits are whole numbers; null means none.",
    "additionalProperties": False,
    "properties": {
        **{name: {"type": ["number", "null"], "minimum": 0} for name in SPEND_LIMITS},
        **{name: {"type": ["integer", "null"], "minimum": 0} for name in COUNT_LIMITS},
    },
}
DETAILS_ENTRY: Schema = {
    "title": "AiModelAccess",
    "description": "One RFC 9396 `ai_model_access` authorization details entry (SPEC.md).",
    "type": "object",
    "required": ["type", "provider"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "enum": ["ai_model_access"]},
        "provider": {"type": "string", "examples": ["openai", "anthropic", "google"]},
        "models": {
            "type": "array",
            "items": {"type": "string", "pattern": MODEL_PATTERN.pattern},
            "examples": [["gpt-4o-mini", "claude-*"]],
        },
        "capabilities": {"type": "array", "items": {"type": "string", "enum": list(CAPABILITIES)}},
        "limits": LIMITS,
        "expires": {"type": "string", "format": "date-time"},
        "reason": {"type": "string", "maxLength": 500},
    },
}
DETAILS: Schema = {"type": "array", "items": DETAILS_ENTRY, "minItems": 1}
# What the vault answers: every entry normalised, plus the proxy base URL to call.
GRANTED_DETAILS: Schema = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["type", "provider"],
        "properties": {
            "type": {"type": "string", "enum": ["ai_model_access"]},
            "provider": TEXT,
            "base_url": {**URL, "description": "The proxy base URL to give the provider's SDK"},
        },
    },
}
DETAILS_EXAMPLE = (
    '[{"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"], '
    '"limits": {"daily_spend": 1}}]'
)
DETAILS_JSON_FIELD: Schema = {
    "type": "string",
    "description": "The `authorization_details` JSON array (RFC 9396 §2), as a string.",
    "examples": [DETAILS_EXAMPLE],
}


def form_body(
    properties: Mapping[str, Schema], required: Iterable[str] = (), *, description: str = ""
) -> dict[str, Any]:
    """``openapi_extra`` for a form-encoded body the route reads itself."""
    schema: Schema = {"type": "object", "properties": dict(properties)}
    if required := list(required):
        schema["required"] = required
    body: dict[str, Any] = {"required": True, "content": {FORM: {"schema": schema}}}
    if description:
        body["description"] = description
    return {"requestBody": body}


def json_body(schema: Schema, example: Any, *, description: str = "") -> dict[str, Any]:
    """``openapi_extra`` for a JSON body the route reads (and validates) itself."""
    content = {"schema": schema, "example": example}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": content},
        }
    }


def json_response(description: str, schema: Schema) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def oauth_errors(*statuses: int, unavailable: bool = True) -> Responses:
    """The RFC 6749 §5.2 JSON error at each status, and 503 when the database is away."""
    answers: Responses = {
        status: json_response("RFC 6749 §5.2 error", OAUTH_ERROR) for status in statuses
    }
    if unavailable:
        answers[503] = json_response(
            "temporarily_unavailable: the database cannot be reached", OAUTH_ERROR
        )
    return answers


RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before asking again (RFC 9110 §10.2.3)",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def too_many_requests() -> Responses:
    """A front door's 429: this address or app asks too often, or has too many requests
    waiting for a person (SPEC.md "Floods and lockouts")."""
    return {
        429: {
            **json_response(
                "temporarily_unavailable (OAuth) or slow_down (device, OKAP): too many requests "
                "from this address or app",
                OAUTH_ERROR,
            ),
            "headers": RETRY_AFTER,
        }
    }


def html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": TEXT}}}


def redirect(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"Location": {"description": "Where the browser goes next", "schema": TEXT}},
    }


def form_post(
    summary: str,
    fields: Mapping[str, Schema] | None,
    *,
    pages: Mapping[int, str],
    done: str | None,
    signed_in: bool = True,
) -> dict[str, Any]:
    """Decorator arguments for a dashboard form POST (post/redirect/get).

    ``fields`` is the form, or None where the route's ``Form`` parameters describe it.
    ``done`` describes the 303 on success, or is None for a form whose success is a page
    of its own (``pages[200]``: a secret shown once is never behind a redirect); ``pages``
    the HTML answers by status. Signed-in forms carry the session's ``csrf_token`` and
    answer 403 without it, 303 to /signin without a session. The route returns its own
    responses; ``response_class`` only stops the spec claiming a JSON body.
    """
    responses: Responses = {status: html(text) for status, text in pages.items()}
    responses[503] = html("The vault cannot reach its database")
    if done is not None:
        responses[303] = redirect(
            done + (" (or to /signin, when not signed in)" if signed_in else "")
        )
    elif signed_in:
        responses[303] = redirect("Not signed in: to /signin")
    success = 303 if done is not None else 200
    if signed_in:
        responses.setdefault(403, html("The form's CSRF token is missing or wrong"))
    described: dict[str, Any] = {}
    if fields is not None:
        properties = {"csrf_token": TEXT, **fields} if signed_in else dict(fields)
        described["openapi_extra"] = form_body(properties, ["csrf_token"] if signed_in else [])
    return {
        **described,
        "summary": summary,
        "tags": [DASHBOARD_TAG],
        "status_code": success,
        "response_class": RedirectResponse if done is not None else HTMLResponse,
        "response_description": responses[success]["description"],
        "responses": responses,
    }
