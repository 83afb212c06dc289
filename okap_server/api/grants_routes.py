"""/api/v1/grants: list (filters, cursor), read, narrow (If-Match, RFC 9110 §13.1.1),
revoke (the dashboard's own revoke: audit and replica notification written once), and
regenerate the token (``manage.app_tokens``, as the dashboard's Regenerate token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from okap_server.accounts.management_tokens import Principal
from okap_server.api.auth import require
from okap_server.api.docs import op
from okap_server.api.problems import (
    BadRequest,
    Conflict,
    Invalid,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from okap_server.api.schemas import GrantPatch
from okap_server.authorization.grants import token_response
from okap_server.authorization.narrowing import NarrowingError
from okap_server.dashboard.apps import own_grant, revoke
from okap_server.manage import grants as core
from okap_server.manage.app_tokens import GrantInactive, regenerate_token
from okap_server.manage.paging import DEFAULT_PAGE, MAX_PAGE, BadCursor, aware
from okap_server.web.sessions import client_ip, vault_of

router = APIRouter(prefix="/api/v1/grants", tags=["grants"])
GONE = "no such grant"


@router.get("", **op("grants:read"))
def list_grants(
    request: Request,
    provider: str | None = Query(default=None, max_length=32),
    app: str | None = Query(default=None, max_length=512),
    active: bool | None = None,
    cursor: str | None = Query(default=None, max_length=512),
    limit: int = Query(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE),
    who: Principal = Depends(require("grants:read")),
) -> dict[str, Any]:
    vault = vault_of(request)
    wanted = core.GrantFilter(provider=provider, app=app, active=active)
    with vault.session() as session:
        try:
            page, after = core.page_grants(session, who.account_id, wanted, cursor, limit)
        except BadCursor as exc:
            raise BadRequest(str(exc)) from None
        return {"data": [core.summary(g) for g in page], "next": after}


@router.get("/{grant_id}", **op("grants:read", 404))
def get_grant(
    request: Request,
    grant_id: str,
    response: Response,
    who: Principal = Depends(require("grants:read")),
) -> dict[str, Any]:
    vault = vault_of(request)
    with vault.session() as session:
        grant = own_grant(session, who.account_id, grant_id)
        if grant is None:
            raise NotFound(GONE)
        response.headers["ETag"] = core.etag(grant)
        return core.detail(vault, session, grant)


def _expected_version(grant_id: str, if_match: str | None) -> int:
    if not if_match:
        raise PreconditionRequired("send If-Match with the ETag of GET /api/v1/grants/{id}")
    prefix = f'"{grant_id[:40]}.'
    value = if_match.strip()
    if not (value.startswith(prefix) and value.endswith('"')):
        raise PreconditionFailed("If-Match is not this grant's current ETag")
    version = value[len(prefix) : -1]
    if not version.isdigit() or len(version) > 12:
        raise PreconditionFailed("If-Match is not this grant's current ETag")
    return int(version)


@router.patch("/{grant_id}", **op("grants:write", 404, 412, 428, body=True))
def patch_grant(
    request: Request,
    grant_id: str,
    body: GrantPatch,
    response: Response,
    if_match: str | None = Header(default=None, max_length=200),
    who: Principal = Depends(require("grants:write")),
) -> dict[str, Any]:
    vault = vault_of(request)
    with vault.session() as session:
        if own_grant(session, who.account_id, grant_id) is None:
            raise NotFound(GONE)
    changes = {
        provider: core.EntryChange(
            models=entry.models,
            limits=entry.limits.model_dump(exclude_unset=True) if entry.limits else {},
            expires=aware(entry.expires) if entry.expires else None,
        )
        for provider, entry in body.providers.items()
    }
    try:
        grant = core.narrow_grant(
            vault,
            who.account_id,
            grant_id,
            _expected_version(grant_id, if_match),
            changes,
            client_ip(request),
        )
    except core.StaleVersion:
        raise PreconditionFailed("the grant changed since you read it; GET it again") from None
    except NarrowingError as exc:
        raise Invalid(str(exc)) from None
    if grant is None:
        raise NotFound(GONE)
    with vault.session() as session:
        response.headers["ETag"] = core.etag(grant)
        return core.detail(vault, session, grant)


@router.delete("/{grant_id}", status_code=204, **op("grants:write", 404))
def delete_grant(
    request: Request, grant_id: str, who: Principal = Depends(require("grants:write"))
) -> Response:
    if revoke(vault_of(request), who.account_id, grant_id, client_ip(request)) is None:
        raise NotFound(GONE)
    return Response(status_code=204)


@router.post("/{grant_id}/token", status_code=201, **op("grants:write", 404, 409))
def new_token(
    request: Request,
    grant_id: str,
    response: Response,
    who: Principal = Depends(require("grants:write")),
) -> dict[str, Any]:
    """A new token for the grant; the old one is revoked (RFC 7009) and the grant, its
    limits and its usage stay. The token is in this answer only (``no-store``)."""
    vault = vault_of(request)
    try:
        issued = regenerate_token(vault, who.account_id, grant_id, ip=client_ip(request), via="api")
    except GrantInactive as exc:
        raise Conflict(str(exc)) from None
    if issued is None:
        raise NotFound(GONE)
    grant, token = issued
    response.headers["Cache-Control"] = "no-store"
    return {
        **token_response(grant, token, vault.settings.effective_public_url),
        "grant_id": grant.id,
    }
