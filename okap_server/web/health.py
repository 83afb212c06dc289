"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from okap_server.context import Vault

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
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
