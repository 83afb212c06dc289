"""/api/v1/provider-keys: store (answers the hint only), list hints, rename / make
default / replace the secret in place (PATCH ``secret``: grants pinned to the key keep
working, no new consent), remove (409 while grants depend on it, unless ``?move_to=`` names
another key of the same provider: the grants move there first), and test against the
provider. A secret is never echoed: not in an
answer, not in an error (validation names the field, never its value), not in a log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from okap_server.accounts.management_tokens import Principal
from okap_server.api.auth import require
from okap_server.api.docs import op
from okap_server.api.problems import Conflict, Invalid, NotFound
from okap_server.api.schemas import KeyCreate, KeyPatch
from okap_server.dashboard.keys import add_key, check_key
from okap_server.manage.keys import KeyInUse, remove_key, update_key
from okap_server.manage.paging import stamp
from okap_server.vault.keys import KeyInfo, KeyStoreError
from okap_server.web.sessions import client_ip, vault_of

router = APIRouter(prefix="/api/v1/provider-keys", tags=["provider-keys"])
GONE = "no such key"


def shown(key: KeyInfo) -> dict[str, Any]:
    return {
        "id": key.id,
        "provider": key.provider,
        "label": key.label,
        "hint": key.hint,
        "default": key.is_default,
        "created_at": stamp(key.created_at),
        "last_used_at": stamp(key.last_used_at),
    }


@router.post("", status_code=201, **op("keys:write", body=True))
def create_key(
    request: Request, body: KeyCreate, who: Principal = Depends(require("keys:write"))
) -> dict[str, Any]:
    try:
        key = add_key(
            vault_of(request),
            who.account_id,
            provider=body.provider,
            label=body.label,
            secret=body.secret,
            make_default=body.default,
            ip=client_ip(request),
        )
    except KeyStoreError as exc:
        raise Invalid(str(exc)) from None
    return shown(key)


@router.get("", **op("keys:read"))
def list_keys(request: Request, who: Principal = Depends(require("keys:read"))) -> dict[str, Any]:
    vault = vault_of(request)
    with vault.session() as session:
        return {"data": [shown(k) for k in vault.keys.list(session, who.account_id)], "next": None}


@router.patch("/{key_id}", **op("keys:write", 404, body=True))
def patch_key(
    request: Request, key_id: str, body: KeyPatch, who: Principal = Depends(require("keys:write"))
) -> dict[str, Any]:
    try:
        key = update_key(
            vault_of(request),
            who.account_id,
            key_id,
            label=body.label,
            make_default=bool(body.default),
            secret=body.secret,
            ip=client_ip(request),
        )
    except KeyStoreError as exc:
        raise Invalid(str(exc)) from None
    if key is None:
        raise NotFound(GONE)
    return shown(key)


@router.delete("/{key_id}", status_code=204, **op("keys:write", 404, 409))
def delete_key(
    request: Request,
    key_id: str,
    move_to: str | None = Query(default=None, max_length=40),
    who: Principal = Depends(require("keys:write")),
) -> Response:
    try:
        removed = remove_key(
            vault_of(request),
            who.account_id,
            key_id,
            move_to=move_to,
            ip=client_ip(request),
            via="api",
        )
    except KeyInUse as exc:
        raise Conflict(
            f"{exc}; pass ?move_to=KEY_ID to move them to another key", grants=exc.grant_ids
        ) from None
    except KeyStoreError as exc:
        raise Invalid(str(exc)) from None
    if removed is None:
        raise NotFound(GONE)
    return Response(status_code=204)


@router.post("/{key_id}/test", **op("keys:write", 404))
async def test_key(
    request: Request, key_id: str, who: Principal = Depends(require("keys:write"))
) -> dict[str, Any]:
    result = await check_key(vault_of(request), who.account_id, key_id)
    if result is None:
        raise NotFound(GONE)
    return {"ok": result.ok, "message": result.message}
