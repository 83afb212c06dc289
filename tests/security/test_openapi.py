"""The surface the vault publishes at /openapi.json: exactly the protocol and management
operations (so it cannot silently shrink, and the proxy passthrough and browser-only pages
stay out), with their form fields and RFC 6749 error responses described."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

PROTOCOL = {
    "GET /.well-known/oauth-authorization-server",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "POST /oauth/par",
    "GET /oauth/authorize",
    "POST /oauth/token",
    "POST /oauth/device_authorization",
    "POST /oauth/revoke",
    "POST /oauth/introspect",
    "POST /okap/authorize",
    "GET /okap/authorize/{handle}",
    "POST /okap/request",
    "GET /okap/usage",
}
MANAGEMENT = {
    "POST /setup",
    "POST /signin",
    "POST /signout",
    "POST /device",
    "POST /consent/{request_id}",
    "POST /apps/{grant_id}/limits",
    "POST /apps/{grant_id}/revoke",
    "POST /apps/{grant_id}/token",
    "GET /pending/status",
    "POST /pending/{request_id}/approve",
    "POST /pending/{request_id}/deny",
    "POST /pending/{request_id}/reuse",
    "POST /api-tokens",
    "POST /tokens",
    "POST /api-tokens/{token_id}/revoke",
    "POST /keys",
    "POST /keys/{key_id}/default",
    "POST /keys/{key_id}/test",
    "POST /keys/{key_id}/remove",
    "POST /keys/{key_id}/secret",
    "POST /keys/{key_id}/ceiling",
    "GET /activity.csv",
    "POST /settings/preferences",
    "POST /settings/ceilings",
    "POST /settings/password",
    "POST /admin/accounts",
    "POST /admin/accounts/{account_id}/disable",
    "POST /admin/accounts/{account_id}/enable",
    "POST /admin/accounts/{account_id}/password",
    "POST /webhooks",
    "POST /webhooks/{endpoint_id}/test",
    "POST /webhooks/{endpoint_id}/enable",
    "POST /webhooks/{endpoint_id}/remove",
}
# The JSON management API (issue 20), each operation with its x-okap-scope.
API = {
    "GET /api/v1/grants": "grants:read",
    "GET /api/v1/grants/{grant_id}": "grants:read",
    "PATCH /api/v1/grants/{grant_id}": "grants:write",
    "DELETE /api/v1/grants/{grant_id}": "grants:write",
    "POST /api/v1/grants/{grant_id}/token": "grants:write",
    "POST /api/v1/provider-keys": "keys:write",
    "GET /api/v1/provider-keys": "keys:read",
    "PATCH /api/v1/provider-keys/{key_id}": "keys:write",
    "DELETE /api/v1/provider-keys/{key_id}": "keys:write",
    "POST /api/v1/provider-keys/{key_id}/test": "keys:write",
    "POST /api/v1/tokens": "tokens:write",
    "GET /api/v1/usage": "usage:read",
    "GET /api/v1/me/usage": "usage:read",
    "GET /api/v1/events": "events:read",
    "GET /api/v1/accounts": "admin",
    "POST /api/v1/accounts": "admin",
    "PATCH /api/v1/accounts/{account_id}": "admin",
    "POST /api/v1/webhooks": "webhooks:write",
    "GET /api/v1/webhooks": "webhooks:write",
    "GET /api/v1/webhooks/{endpoint_id}/deliveries": "webhooks:write",
    "DELETE /api/v1/webhooks/{endpoint_id}": "webhooks:write",
    "POST /api/v1/webhooks/{endpoint_id}/test": "webhooks:write",
}
FORM = "application/x-www-form-urlencoded"
FORM_FIELDS = {
    "/oauth/par": {"client_id", "redirect_uri", "code_challenge", "authorization_details"},
    "/oauth/token": {"grant_type", "code", "code_verifier", "device_code", "client_id"},
    "/oauth/device_authorization": {"client_id", "authorization_details"},
    "/oauth/revoke": {"token", "token_type_hint"},
    "/oauth/introspect": {"token"},
    "/keys": {"csrf_token", "provider", "label", "secret"},
    "/apps/{grant_id}/limits": {"csrf_token", "p0.daily_spend", "p0.requests_per_minute"},
    "/consent/{request_id}": {"csrf_token", "decision", "d0.limit.daily_spend"},
    "/tokens": {"csrf_token", "name", "d0.provider", "d0.limit.daily_spend", "d0.expires"},
}


@pytest.fixture
def spec(live_url: str) -> dict[str, Any]:
    response = httpx.get(f"{live_url}/openapi.json")  # no session: the schema is public
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = response.json()
    return document


def operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_the_published_operations_are_the_protocol_and_management_surface(
    spec: dict[str, Any],
) -> None:
    published = set(operations(spec))
    everything = PROTOCOL | MANAGEMENT | set(API)
    assert published == everything, (
        f"missing: {sorted(everything - published)}, unexpected: {sorted(published - everything)}"
    )
    found = operations(spec)
    for label, scope in API.items():
        assert found[label]["x-okap-scope"] == scope, label
        assert found[label]["security"] == [{"okapm": []}], label
        problems = {s for s, r in found[label]["responses"].items() if s.startswith("4")}
        assert {"401", "403", "422", "429"} <= problems, label
        for status in problems:
            assert "application/problem+json" in found[label]["responses"][status]["content"]
    assert not any(path.startswith("/v1") for path in spec["paths"])  # the proxy passthrough
    assert spec["info"]["title"] == "okap vault"


def test_no_documentation_pages_are_served(page_url: str) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert httpx.get(f"{page_url}{path}").status_code == 404, path


def test_form_endpoints_describe_their_fields(spec: dict[str, Any]) -> None:
    found = operations(spec)
    for path, fields in FORM_FIELDS.items():
        body = found[f"POST {path}"]["requestBody"]["content"]
        assert set(body) == {FORM}, (path, set(body))
        schema = resolve(spec, body[FORM]["schema"])
        assert fields <= set(schema["properties"]), (path, sorted(schema["properties"]))
    token = resolve(spec, found["POST /oauth/token"]["requestBody"]["content"][FORM]["schema"])
    assert token["required"] == ["grant_type"]
    assert set(token["properties"]["grant_type"]["enum"]) == {
        "authorization_code",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    }
    for path in ("/signin", "/device", "/setup"):  # FastAPI Form parameters
        schema = resolve(spec, found[f"POST {path}"]["requestBody"]["content"][FORM]["schema"])
        assert "csrf_token" in schema["properties"], path


def test_protocol_errors_are_documented_as_rfc6749_json_never_422(spec: dict[str, Any]) -> None:
    for label, operation in operations(spec).items():
        path = label.split(" ", 1)[1]
        if not path.startswith(("/oauth/", "/okap/")) or path == "/oauth/authorize":
            continue
        errors = {s: r for s, r in operation["responses"].items() if s.startswith("4")}
        assert errors, label
        assert "422" not in errors or path == "/okap/authorize/{handle}", label
        for status, response in errors.items():
            if status == "422":
                continue
            schema = resolve(spec, response["content"]["application/json"]["schema"])
            assert schema["required"] == ["error"], (label, status)


def test_success_answers_are_described(spec: dict[str, Any]) -> None:
    found = operations(spec)
    token = found["POST /oauth/token"]["responses"]["200"]["content"]["application/json"]
    assert {"access_token", "token_type", "expires_in"} <= set(token["schema"]["required"])
    par = found["POST /oauth/par"]["responses"]["201"]["content"]["application/json"]
    assert par["schema"]["required"] == ["request_uri", "expires_in"]
    # A dashboard form answers with a redirect and no body (post/redirect/get).
    keys = found["POST /keys"]["responses"]
    assert "content" not in keys["303"] and "Location" in keys["303"]["headers"]
    assert "text/html" in keys["422"]["content"]
    # A form that shows a secret once answers 200 with the page, never a redirect: its
    # only 303 is the one to /signin.
    for path in ("/api-tokens", "/webhooks", "/tokens"):
        answers = found[f"POST {path}"]["responses"]
        assert "text/html" in answers["200"]["content"], path
        assert answers["303"]["description"] == "Not signed in: to /signin", path


def test_a_multipart_body_is_an_rfc6749_error(live_url: str) -> None:
    """No protocol endpoint takes multipart (RFC 6749 §3.2: form-urlencoded): it is refused
    unread, 415, in the protocol's own shape (RFC 6749 §5.2), not Starlette's."""
    response = httpx.post(
        f"{live_url}/oauth/token",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--x--\r\n",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 415
    assert response.json()["error"] == "invalid_request"
