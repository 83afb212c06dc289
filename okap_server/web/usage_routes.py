"""``GET /okap/usage``: what a token may still spend and send (OKAP usage endpoint)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from okap_server.authorization.tokens import looks_like_token, token_hash
from okap_server.proxy.service import ProxyService
from okap_server.proxy.usage import find_grant, usage_document

router = APIRouter()


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@router.get("/okap/usage", include_in_schema=False)
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
