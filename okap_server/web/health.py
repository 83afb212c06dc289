"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.engine import Engine

from okap_server.context import Vault
from okap_server.vault.identity import prove, valid_challenge
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
# A load balancer's probe gives up after a second or two: answer within that.
READY_WAIT_SECONDS = 2.0


class DatabaseProbe:
    """``SELECT 1`` in a worker thread, waited for a bounded time.

    A database that accepts connections but never answers (a paused VM, a stuck disk) would
    hold the check for as long as it is frozen: the probe answers "unreachable" when the
    wait is over, and while that check is still stuck, later probes join it instead of
    starting more, so a long freeze holds one thread, not one per probe."""

    def __init__(self, engine: Engine, wait_seconds: float) -> None:
        self.engine = engine
        self.wait_seconds = wait_seconds
        self._running: asyncio.Future[None] | None = None

    def _ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    async def answers(self) -> bool:
        running = self._running
        if running is None or running.done():
            running = asyncio.get_running_loop().run_in_executor(None, self._ping)
            running.add_done_callback(_retrieve)  # a failure nobody awaits is not logged
            self._running = running
        try:
            await asyncio.wait_for(asyncio.shield(running), self.wait_seconds)
        except Exception:  # any driver error, or no answer in time, means "not ready"
            return False
        return True


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def probe_of(request: Request) -> DatabaseProbe:
    state = request.app.state
    probe: DatabaseProbe | None = getattr(state, "database_probe", None)
    if probe is None:
        vault: Vault = state.vault
        wait = min(vault.settings.database_wait_seconds, READY_WAIT_SECONDS)
        probe = state.database_probe = DatabaseProbe(vault.engine, wait)
    return probe


@router.get(
    "/healthz",
    summary="Liveness: the process is up",
    responses={
        200: oa.json_response(
            "Serving",
            {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {"enum": ["ok"]},
                    "proof": {
                        "type": "object",
                        "description": "With a valid challenge only: HMAC(k, challenge + '.' + "
                        "salt), k derived from the master key; a fresh salt every time",
                        "required": ["salt", "mac"],
                        "properties": {"salt": oa.TEXT, "mac": oa.TEXT},
                    },
                },
            },
        )
    },
)
def healthz(
    request: Request,
    challenge: Annotated[
        str | None,
        Query(
            description="A random nonce (16-128 URL-safe characters) that `okap-server "
            "doctor` sends to check that this vault answers at the public URL",
        ),
    ] = None,
) -> dict[str, Any]:
    """The process is up and serving. Given a ``challenge``, the vault also proves it holds
    its master key (``vault/identity.py``), so doctor can tell this vault from another at
    the same URL; nothing stable about the key is ever in the answer."""
    if not valid_challenge(challenge):
        return {"status": "ok"}
    vault: Vault = request.app.state.vault
    proof = prove(vault.keyring, str(challenge))
    return {"status": "ok", "proof": {"salt": proof.salt, "mac": proof.mac}}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and the master key is loaded",
    responses={
        200: oa.json_response("Ready", READY),
        503: oa.json_response("Not ready: stop sending traffic here", READY),
    },
)
async def readyz(request: Request) -> JSONResponse:
    """The database answers (within two seconds) and the master key is loaded."""
    checks: dict[str, str] = {"master_key": "loaded"}
    if not await probe_of(request).answers():
        checks["database"] = "unreachable"
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
    checks["database"] = "ok"
    return JSONResponse({"status": "ok", "checks": checks})
