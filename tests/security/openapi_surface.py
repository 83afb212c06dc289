"""An OpenAPI 3.0 description of the vault's protocol and management endpoints, for
schemathesis. The app publishes no schema of its own (its routes are excluded from
/openapi.json), so this one is written from SPEC.md's contract; each parameter's schema is
the documented type, which schemathesis then violates on purpose in its negative phase."""

from __future__ import annotations

from typing import Any

TEXT: dict[str, Any] = {"type": "string", "maxLength": 300}
DETAILS_JSON: dict[str, Any] = {
    "anyOf": [
        {
            "type": "string",
            "enum": [
                '[{"type": "ai_model_access", "provider": "openai"}]',
                '[{"type": "ai_model_access", "provider": "anthropic", "models": ["claude-*"], '
                '"limits": {"daily_spend": 1}}, {"type": "ai_model_access", "provider": "google"}]',
            ],
        },
        {"type": "string"},
    ]
}
# Valid values offered next to arbitrary text, so valid requests get past validation too.
REDIRECT = {"anyOf": [{"type": "string", "enum": ["https://notes.example/cb"]}, TEXT]}
CHALLENGE = {
    "anyOf": [{"type": "string", "enum": ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"]}, TEXT]
}
LIMITS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "monthly_spend": {"type": "number", "nullable": True},
        "daily_spend": {"type": "number", "nullable": True},
        "total_spend": {"type": "number", "nullable": True},
        "requests_per_minute": {"type": "integer", "nullable": True},
        "requests_per_day": {"type": "integer", "nullable": True},
        "tokens_per_request": {"type": "integer", "nullable": True},
    },
}
ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["type", "provider"],
    "properties": {
        "type": {"type": "string", "enum": ["ai_model_access"]},
        "provider": {"type": "string", "enum": ["openai", "anthropic", "google", "gemini"]},
        "models": {"type": "array", "items": TEXT, "maxItems": 8},
        "capabilities": {"type": "array", "items": TEXT, "maxItems": 8},
        "limits": LIMITS,
        "expires": {"type": "string", "format": "date-time"},
        "reason": TEXT,
    },
}


def form(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": properties,
                    "required": required or [],
                }
            }
        },
    }


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def query(*names: str, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "required": n in required, "schema": TEXT} for n in names]


def path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def bearer() -> dict[str, Any]:
    return {"name": "Authorization", "in": "header", "required": False, "schema": TEXT}


ANY: dict[str, Any] = {"default": {"description": "any"}}


def op(**fields: Any) -> dict[str, Any]:
    return {"responses": ANY, **fields}


def surface(csrf_token: str) -> dict[str, Any]:
    """The schema; ``csrf_token`` is the fuzzing session's, so signed-in forms get past CSRF
    sometimes (schemathesis still tries other values in its negative phase)."""
    csrf = {"type": "string", "enum": [csrf_token]}
    auth_form = {
        "client_id": TEXT,
        "redirect_uri": REDIRECT,
        "response_type": {"type": "string", "enum": ["code"]},
        "code_challenge": CHALLENGE,
        "code_challenge_method": {"type": "string", "enum": ["S256"]},
        "state": TEXT,
        "authorization_details": DETAILS_JSON,
        "client_name": TEXT,
        "client_uri": TEXT,
    }
    limits_form = {f"d0.limit.{name}": {"type": "string"} for name in LIMITS["properties"]}
    paths: dict[str, Any] = {
        "/.well-known/oauth-authorization-server": {"get": op()},
        "/healthz": {"get": op()},
        "/readyz": {"get": op()},
        "/oauth/par": {"post": op(requestBody=form(auth_form, ["client_id"]))},
        "/oauth/authorize": {
            "get": op(parameters=query(*auth_form, "request_uri", required=("client_id",)))
        },
        "/oauth/token": {
            "post": op(
                requestBody=form(
                    {
                        "grant_type": {
                            "type": "string",
                            "enum": [
                                "authorization_code",
                                "urn:ietf:params:oauth:grant-type:device_code",
                            ],
                        },
                        "code": TEXT,
                        "redirect_uri": TEXT,
                        "client_id": TEXT,
                        "code_verifier": TEXT,
                        "device_code": TEXT,
                    },
                    ["grant_type"],
                )
            )
        },
        "/oauth/device_authorization": {
            "post": op(
                requestBody=form(
                    {"client_id": TEXT, "authorization_details": DETAILS_JSON, "client_name": TEXT},
                    ["client_id"],
                )
            )
        },
        "/oauth/revoke": {
            "post": op(requestBody=form({"token": TEXT, "token_type_hint": TEXT}, ["token"]))
        },
        "/oauth/introspect": {
            "post": op(parameters=[bearer()], requestBody=form({"token": TEXT}, ["token"]))
        },
        "/okap/authorize": {
            "post": op(
                requestBody=json_body(
                    {
                        "type": "object",
                        "required": ["okap", "authorization_details"],
                        "properties": {
                            "okap": {"type": "string", "enum": ["1.0"]},
                            "authorization_details": {
                                "type": "array",
                                "items": ENTRY,
                                "maxItems": 3,
                            },
                            "client": {
                                "type": "object",
                                "properties": {"name": TEXT, "url": TEXT, "callback": TEXT},
                            },
                        },
                    }
                )
            )
        },
        "/okap/authorize/{handle}": {"get": op(parameters=[path_param("handle")])},
        "/okap/request": {
            "post": op(
                requestBody=json_body(
                    {
                        "type": "object",
                        "required": ["provider"],
                        "properties": {
                            "provider": ENTRY["properties"]["provider"],
                            "models": ENTRY["properties"]["models"],
                            "capabilities": ENTRY["properties"]["capabilities"],
                            "limits": LIMITS,
                            "expires": TEXT,
                            "reason": TEXT,
                            "app_name": TEXT,
                            "app_url": TEXT,
                        },
                    }
                )
            )
        },
        "/okap/usage": {"get": op(parameters=[bearer()])},
        "/signin": {
            "get": op(parameters=query("next")),
            "post": op(
                requestBody=form(
                    {"username": TEXT, "password": TEXT, "csrf_token": TEXT, "next": TEXT}
                )
            ),
        },
        "/device": {
            "get": op(parameters=query("user_code")),
            "post": op(requestBody=form({"user_code": TEXT, "csrf_token": csrf})),
        },
        "/consent/{request_id}": {
            "get": op(parameters=[path_param("request_id")]),
            "post": op(
                parameters=[path_param("request_id")],
                requestBody=form({"decision": TEXT, "csrf_token": csrf, **limits_form}),
            ),
        },
        "/apps/{grant_id}": {"get": op(parameters=[path_param("grant_id")])},
        "/apps/{grant_id}/limits": {
            "post": op(
                parameters=[path_param("grant_id")],
                requestBody=form({"csrf_token": csrf, **limits_form}),
            )
        },
        "/apps/{grant_id}/revoke": {
            "post": op(parameters=[path_param("grant_id")], requestBody=form({"csrf_token": csrf}))
        },
        "/keys": {
            "get": op(),
            "post": op(
                requestBody=form(
                    {"provider": TEXT, "label": TEXT, "secret": TEXT, "csrf_token": csrf}
                )
            ),
        },
        "/keys/{key_id}/default": {
            "post": op(parameters=[path_param("key_id")], requestBody=form({"csrf_token": csrf}))
        },
        "/activity": {"get": op(parameters=query("provider", "app", "status", "page", "days"))},
        "/activity.csv": {"get": op(parameters=query("provider", "app", "status", "days"))},
        "/pending/status": {"get": op()},
        "/settings/preferences": {
            "post": op(
                requestBody=form(
                    {"csrf_token": csrf, "open_browser": TEXT, **limits_form},
                )
            )
        },
        "/admin/accounts": {
            "post": op(
                requestBody=form(
                    {"username": TEXT, "password": TEXT, "is_admin": TEXT, "csrf_token": csrf}
                )
            )
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "okap vault: protocol and management surface", "version": "1.0"},
        "paths": paths,
    }
