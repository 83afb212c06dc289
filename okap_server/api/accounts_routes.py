"""/api/v1/accounts (``admin`` scope, admins only): list, add, disable or enable, through
the dashboard's admin functions (disabling signs the account out and revokes its apps)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from okap_server.accounts.models import Account
from okap_server.api.auth import require
from okap_server.api.docs import op
from okap_server.api.problems import Conflict, Invalid, NotFound, Unauthorized
from okap_server.api.schemas import AccountCreate, AccountPatch
from okap_server.manage import accounts
from okap_server.manage.management_tokens import Principal
from okap_server.web.sessions import client_ip, vault_of

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


def _shown(view: accounts.AccountSummary) -> dict[str, Any]:
    return {
        "id": view.id,
        "username": view.username,
        "admin": view.is_admin,
        "disabled": view.disabled,
        "keys": view.keys,
        "active_grants": view.apps,
    }


@router.get("", **op("admin"))
def list_accounts(request: Request, who: Principal = Depends(require("admin"))) -> dict[str, Any]:
    with vault_of(request).session() as session:
        return {"data": [_shown(v) for v in accounts.account_rows(session)], "next": None}


@router.post("", status_code=201, **op("admin", body=True))
def add_account(
    request: Request, body: AccountCreate, who: Principal = Depends(require("admin"))
) -> dict[str, Any]:
    with vault_of(request).session() as session:
        me = session.get(Account, who.account_id)
        if me is None:
            raise Unauthorized("the token's account is gone")
        try:
            account = accounts.add(
                session, me, body.username, body.password, body.admin, client_ip(request)
            )
        except accounts.AdminError as exc:
            raise Invalid(str(exc)) from None
        return {"id": account.id, "username": account.username, "admin": account.is_admin}


@router.patch("/{account_id}", **op("admin", 404, 409, body=True))
def patch_account(
    request: Request,
    account_id: str,
    body: AccountPatch,
    who: Principal = Depends(require("admin")),
) -> dict[str, Any]:
    vault = vault_of(request)
    with vault.session() as session:
        me = session.get(Account, who.account_id)
        if me is None:
            raise Unauthorized("the token's account is gone")
        try:
            revoked = accounts.set_disabled(
                session, me, account_id, body.disabled, client_ip(request)
            )
        except LookupError:
            raise NotFound("no such account") from None
        except accounts.AdminError as exc:
            raise Conflict(str(exc)) from None
    return {"id": account_id[:40], "disabled": body.disabled, "revoked_grants": revoked}
