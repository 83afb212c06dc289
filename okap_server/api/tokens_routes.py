"""/api/v1/tokens: a personal token, a grant the person makes for themselves, with the
same validation, defaults and backing keys as consent (RFC 9396 ``authorization_details``).
The ``access_token`` is in this answer only (RFC 6749 §5.1 shape, ``no-store``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from okap_server.api.auth import require
from okap_server.api.docs import op
from okap_server.api.problems import Invalid
from okap_server.api.schemas import TokenCreate
from okap_server.authorization.errors import InvalidAuthorizationDetails
from okap_server.authorization.grants import token_response
from okap_server.manage.management_tokens import Principal
from okap_server.manage.personal import mint_personal
from okap_server.web.sessions import client_ip, vault_of

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.post("", status_code=201, **op("tokens:write", body=True))
def create_token(
    request: Request,
    body: TokenCreate,
    response: Response,
    who: Principal = Depends(require("tokens:write")),
) -> dict[str, Any]:
    vault = vault_of(request)
    try:
        grant, token = mint_personal(
            vault, who.account_id, body.name, body.authorization_details, client_ip(request)
        )
    except InvalidAuthorizationDetails as exc:
        raise Invalid(str(exc.description)) from None
    public_url = vault.settings.effective_public_url
    response.headers["Cache-Control"] = "no-store"
    return {
        **token_response(grant, token, public_url),
        "grant_id": grant.id,
        "base_url": f"{public_url}/v1",
    }
