"""/api/v1/webhooks: register an endpoint (its ``whsec_`` secret in that answer only),
list, remove, send a test event, and read an endpoint's delivery log. Scope
``webhooks:write`` throughout: the list names where the account's events go."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from okap_server.accounts.management_tokens import Principal
from okap_server.api.auth import require
from okap_server.api.docs import op
from okap_server.api.problems import Conflict, Invalid, NotFound
from okap_server.api.schemas import WebhookCreate
from okap_server.manage import webhooks as core
from okap_server.web.sessions import vault_of

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
SCOPE = "webhooks:write"
GONE = "no such webhook endpoint"


@router.post("", status_code=201, **op(SCOPE, body=True))
def create_webhook(
    request: Request,
    body: WebhookCreate,
    response: Response,
    who: Principal = Depends(require(SCOPE)),
) -> dict[str, Any]:
    try:
        endpoint, secret = core.create_endpoint(
            vault_of(request), who.account_id, body.url, body.events, body.description
        )
    except core.WebhookError as exc:
        raise Invalid(str(exc)) from None
    response.headers["Cache-Control"] = "no-store"
    return {**core.endpoint_summary(endpoint), "secret": secret}


@router.get("", **op(SCOPE))
def list_webhooks(request: Request, who: Principal = Depends(require(SCOPE))) -> dict[str, Any]:
    with vault_of(request).session() as session:
        return {
            "data": [core.endpoint_summary(e) for e in core.list_endpoints(session, who.account_id)]
        }


@router.get("/{endpoint_id}/deliveries", **op(SCOPE, 404))
def list_deliveries(
    request: Request, endpoint_id: str, who: Principal = Depends(require(SCOPE))
) -> dict[str, Any]:
    with vault_of(request).session() as session:
        endpoint = core.own_endpoint(session, who.account_id, endpoint_id)
        if endpoint is None:
            raise NotFound(GONE)
        return {"data": [core.delivery_summary(d) for d in core.deliveries(session, endpoint.id)]}


@router.delete("/{endpoint_id}", status_code=204, **op(SCOPE, 404))
def delete_webhook(
    request: Request, endpoint_id: str, who: Principal = Depends(require(SCOPE))
) -> Response:
    if not core.remove_endpoint(vault_of(request), who.account_id, endpoint_id):
        raise NotFound(GONE)
    return Response(status_code=204)


@router.post("/{endpoint_id}/test", status_code=202, **op(SCOPE, 404, 409))
def test_webhook(
    request: Request, endpoint_id: str, who: Principal = Depends(require(SCOPE))
) -> dict[str, Any]:
    try:
        event_id = core.send_test(vault_of(request), who.account_id, endpoint_id)
    except core.WebhookError as exc:
        raise Conflict(str(exc)) from None
    if event_id is None:
        raise NotFound(GONE)
    return {"event_id": event_id, "status": "queued"}
