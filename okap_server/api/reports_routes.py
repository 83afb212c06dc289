"""/api/v1/usage, /api/v1/me/usage and /api/v1/events: what one account's grants used, and
its audit trail (cursor-paged, newest first)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from okap_server.api.auth import require
from okap_server.api.docs import op
from okap_server.api.problems import BadRequest, NotFound
from okap_server.manage import reports
from okap_server.manage.grants import own_grant
from okap_server.manage.management_tokens import Principal
from okap_server.manage.paging import DEFAULT_PAGE, MAX_PAGE, BadCursor, aware
from okap_server.web.sessions import vault_of

router = APIRouter(prefix="/api/v1", tags=["usage", "events"])


@router.get("/usage", **op("usage:read", 404))
def usage(
    request: Request,
    start: datetime | None = Query(default=None, alias="from"),
    end: datetime | None = Query(default=None, alias="to"),
    grant_id: str | None = Query(default=None, alias="grant", max_length=40),
    who: Principal = Depends(require("usage:read")),
) -> dict[str, Any]:
    vault = vault_of(request)
    with vault.session() as session:
        if grant_id is not None and own_grant(session, who.account_id, grant_id) is None:
            raise NotFound("no such grant")
        rows = reports.usage_rows(
            session,
            who.account_id,
            aware(start) if start else None,
            aware(end) if end else None,
            grant_id,
        )
        return {"data": rows, "next": None}


@router.get("/me/usage", **op("usage:read"))
def my_usage(request: Request, who: Principal = Depends(require("usage:read"))) -> dict[str, Any]:
    vault = vault_of(request)
    with vault.session() as session:
        return reports.my_usage(vault, session, who.account_id)


@router.get("/events", **op("events:read"))
def events(
    request: Request,
    kind: str | None = Query(default=None, max_length=48),
    cursor: str | None = Query(default=None, max_length=512),
    limit: int = Query(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE),
    who: Principal = Depends(require("events:read")),
) -> dict[str, Any]:
    vault = vault_of(request)
    with vault.session() as session:
        try:
            data, after = reports.page_events(session, who.account_id, kind, cursor, limit)
        except BadCursor as exc:
            raise BadRequest(str(exc)) from None
        return {"data": data, "next": after}
