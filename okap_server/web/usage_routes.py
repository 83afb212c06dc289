"""``GET /okap/usage``: what a token may still spend and send (OKAP usage endpoint)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from okap_server.grants.tokens import looks_like_token, token_hash
from okap_server.grants.usage import find_grant, usage_document
from okap_server.proxy.service import ProxyService
from okap_server.web import openapi as oa

router = APIRouter(tags=[oa.PROTOCOL_TAG])

USAGE: oa.Schema = {
    "type": "object",
    "required": ["active", "grant_id", "expires_at", "authorization_details", "usage"],
    "properties": {
        "active": {"type": "boolean", "enum": [True]},
        "grant_id": oa.TEXT,
        "expires_at": {"type": "string", "format": "date-time"},
        "authorization_details": oa.GRANTED_DETAILS,
        "usage": {"type": "object", "description": "Per provider: spend and requests used"},
    },
}


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@router.get(
    "/okap/usage",
    summary="What an okap token may still spend and send",
    responses={
        200: oa.json_response("The token's limits and what is left", USAGE),
        **oa.oauth_errors(401),
    },
    openapi_extra={
        "parameters": [
            {
                "name": "Authorization",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "examples": ["Bearer okap_..."]},
            }
        ]
    },
)
async def usage(request: Request) -> Response:
    """What a token may still spend and send (OKAP usage endpoint)."""
    service: ProxyService = request.app.state.proxy
    runtime = service.runtime
    token = _bearer(request)
    challenge = {"www-authenticate": 'Bearer error="invalid_token"', "cache-control": "no-store"}
    if token is None or not looks_like_token(token):
        return JSONResponse(
            {"error": "invalid_token", "error_description": "A valid okap token is required."},
            status_code=401,
            headers=challenge,
        )

    def build() -> dict[str, Any] | None:
        with runtime.vault.session() as session:
            grant = find_grant(session, token_hash(token))
            if grant is None:
                return None
            return usage_document(session, grant, runtime.settings, runtime.catalog)

    document = await anyio.to_thread.run_sync(build)
    if document is None or not document.get("active"):
        return JSONResponse(
            {
                "error": "invalid_token",
                "error_description": "The okap token is unknown, revoked or expired.",
            },
            status_code=401,
            headers=challenge,
        )
    return JSONResponse(document, headers={"cache-control": "no-store"})
