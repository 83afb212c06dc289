"""The request and answer schemas of the OAuth 2.0 and OKAP endpoints, as published in
``/openapi.json`` (attached to the routes in ``oauth_routes`` and ``okap_routes``). They
describe what the protocol core accepts and answers (SPEC.md); they validate nothing."""

from __future__ import annotations

from typing import Any

from okap_server.web import openapi as oa

CLIENT_ID: oa.Schema = {
    "type": "string",
    "description": "Public client (no secret); an https URL names the app best.",
    "examples": ["https://notes.example"],
}
AUTHORIZE_FIELDS: dict[str, oa.Schema] = {
    "client_id": CLIENT_ID,
    "response_type": {"type": "string", "enum": ["code"]},
    "redirect_uri": {**oa.URL, "examples": ["https://notes.example/cb"]},
    "code_challenge": {
        "type": "string",
        "description": "RFC 7636 S256 challenge",
        "examples": ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"],
    },
    "code_challenge_method": {"type": "string", "enum": ["S256"]},
    "state": oa.TEXT,
    "authorization_details": oa.DETAILS_JSON_FIELD,
    "client_name": oa.TEXT,
    "client_uri": oa.URL,
}
METADATA: oa.Schema = {
    "type": "object",
    "required": ["issuer", "token_endpoint", "okap_versions_supported"],
    "properties": {
        "issuer": oa.URL,
        "authorization_endpoint": oa.URL,
        "token_endpoint": oa.URL,
        "okap_versions_supported": {"type": "array", "items": oa.TEXT},
        "okap_providers_supported": {"type": "array", "items": oa.TEXT},
    },
}
TOKEN: oa.Schema = {
    "title": "TokenResponse",
    "type": "object",
    "required": ["access_token", "token_type", "expires_in", "authorization_details"],
    "properties": {
        "access_token": {"type": "string", "pattern": "^okap_"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer", "minimum": 0},
        "authorization_details": oa.GRANTED_DETAILS,
        # Token exchange only (RFC 8693 §2.2.1).
        "issued_token_type": {
            "type": "string",
            "enum": ["urn:ietf:params:oauth:token-type:access_token"],
        },
    },
}
DEVICE: oa.Schema = {
    "type": "object",
    "required": ["device_code", "user_code", "verification_uri", "expires_in", "interval"],
    "properties": {
        "device_code": oa.TEXT,
        "user_code": {"type": "string", "examples": ["WDJB-MJHT"]},
        "verification_uri": oa.URL,
        "verification_uri_complete": oa.URL,
        "expires_in": {"type": "integer"},
        "interval": {"type": "integer"},
    },
}
INTROSPECTION: oa.Schema = {
    "type": "object",
    "required": ["active"],
    "properties": {
        "active": {"type": "boolean"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "client_id": oa.TEXT,
        "iat": {"type": "integer"},
        "exp": {"type": "integer"},
        "iss": oa.URL,
        "grant_id": oa.TEXT,
        "authorization_details": oa.GRANTED_DETAILS,
        "usage": {"type": "object"},
    },
}
OKAP_ANSWER: oa.Schema = {
    "title": "OkapAnswer",
    "description": "OKAP v1.0: granted (token), denied (reason) or pending (poll_url).",
    "type": "object",
    "required": ["okap", "status"],
    "properties": {
        "okap": {"type": "string", "enum": ["1.0"]},
        "status": {"type": "string", "enum": ["granted", "denied", "pending"]},
        "token": {"type": "string", "pattern": "^okap_"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_at": {"type": "string", "format": "date-time"},
        "authorization_details": oa.GRANTED_DETAILS,
        "reason": {"type": ["string", "null"]},
        "poll_url": oa.URL,
        "consent_url": oa.URL,
        "interval": {"type": "integer"},
    },
}
OKAP_REQUEST: oa.Schema = {
    "type": "object",
    "required": ["okap", "authorization_details"],
    "additionalProperties": False,
    "properties": {
        "okap": {"type": "string", "enum": ["1.0"]},
        "authorization_details": oa.DETAILS,
        "client": {
            "type": "object",
            "description": "What the consent page shows about the app (unverified).",
            "additionalProperties": False,
            "properties": {"name": oa.TEXT, "url": oa.URL, "callback": oa.URL},
        },
    },
}
REFERENCE_REQUEST: oa.Schema = {
    "type": "object",
    "required": ["provider"],
    "additionalProperties": False,
    "properties": {
        "okap": {"type": "string", "enum": ["1.0"]},
        **{
            name: oa.DETAILS_ENTRY["properties"][name]
            for name in ("provider", "models", "capabilities", "limits", "expires", "reason")
        },
        "app_name": oa.TEXT,
        "app_url": oa.URL,
        "redirect_uri": oa.URL,
    },
}
REFERENCE_ANSWER: oa.Schema = {
    "type": "object",
    "required": ["okap", "approved", "token", "error", "error_code"],
    "properties": {
        "okap": {"type": "string", "enum": ["1.0"]},
        "approved": {"type": "boolean"},
        "token": {
            "type": ["object", "null"],
            "properties": {"token": {"type": "string", "pattern": "^okap_"}, "base_url": oa.URL},
        },
        "error": {"type": ["string", "null"]},
        "error_code": {"type": ["string", "null"]},
    },
}
PREFER: dict[str, Any] = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": "`wait=N`: wait up to N seconds (at most the vault's limit) for the person",
    "schema": {"type": "string", "examples": ["wait=10"]},
}
