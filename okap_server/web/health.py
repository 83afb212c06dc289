"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from okap_server.context import Vault
from okap_server.web import openapi as oa

router = APIRouter(tags=["Health"])

READY: oa.Schema = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


@router.get(
    "/healthz",
    summary="Liveness: the process is up",
    responses={
        200: oa.json_response(
            "Serving", {"type": "object", "properties": {"status": {"enum": ["ok"]}}}
        )
    },
)
def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and the master key is loaded",
    responses={
        200: oa.json_response("Ready", READY),
        503: oa.json_response("Not ready: stop sending traffic here", READY),
    },
)
def readyz(request: Request) -> JSONResponse:
    """The database answers and the master key is loaded."""
    vault: Vault = request.app.state.vault
    checks: dict[str, str] = {"master_key": "loaded"}
    try:
        with vault.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # any driver error means "not ready"
        checks["database"] = "unreachable"
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
    return JSONResponse({"status": "ok", "checks": checks})
