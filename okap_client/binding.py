"""The OKAP v1.0 HTTP binding (SPEC "Front door 2") as an I/O-free flow.

One JSON ``POST`` to ``okap_authorize_endpoint``; while nobody has decided, the vault
answers ``pending`` with a ``consent_url`` for the person and a ``poll_url`` the app polls
every ``interval`` seconds until ``granted`` or ``denied``. Used for vaults that offer only
this binding, or when forced with ``flow="okap"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from okap_client.errors import AccessDenied, AuthorizationExpired, VaultUnreachable, error_from_body
from okap_client.flows import Flow, FlowContext, HttpCall, Notice, OpenBrowser, Reply, Sleep
from okap_client.token import OkapToken, parse_instant

OKAP_VERSION = "1.0"
DEFAULT_POLL_INTERVAL = 2.0


def _body(ctx: FlowContext) -> dict[str, Any]:
    client = {"name": ctx.client_name, "url": ctx.client_uri}
    return {
        "okap": OKAP_VERSION,
        "authorization_details": ctx.details,
        "client": {k: v for k, v in client.items() if v},
    }


def _granted(ctx: FlowContext, body: Mapping[str, Any]) -> OkapToken:
    key = body.get("token")
    if not isinstance(key, str) or not key:
        raise VaultUnreachable("the vault granted access but sent no token")
    details = body.get("authorization_details")
    return OkapToken(
        key=key,
        vault_url=ctx.vault_url,
        authorization_details=[dict(d) for d in details or [] if isinstance(d, Mapping)],
        expires_at=parse_instant(body.get("expires_at")),
        token_type=str(body.get("token_type") or "Bearer"),
    )


def okap_binding_flow(ctx: FlowContext) -> Flow:
    endpoint = ctx.metadata.okap_authorize_endpoint
    assert endpoint is not None
    # wait=0: answer "pending" at once, so the person can be shown the consent page now.
    reply: Reply = yield HttpCall("POST", endpoint, json=_body(ctx), headers={"Prefer": "wait=0"})
    started = ctx.clock()
    shown = False
    while True:
        body = reply.body if isinstance(reply.body, Mapping) else {}
        status = body.get("status")
        if reply.status == 404:
            raise VaultUnreachable(f"{ctx.vault_url} does not look like an okap vault")
        if reply.status != 200 or status not in ("granted", "denied", "pending"):
            raise error_from_body(reply.status, reply.body)
        if status == "granted":
            return _granted(ctx, body)
        if status == "denied":
            reason = str(body.get("reason") or "")
            if body.get("error") == "expired_token":
                raise AuthorizationExpired(reason or "nobody decided in time")
            raise AccessDenied(reason, error=str(body.get("error") or "access_denied"))
        poll_url = body.get("poll_url")
        if not isinstance(poll_url, str):
            raise VaultUnreachable("the vault's pending answer has no poll_url")
        if not shown:
            shown = True
            consent = str(body.get("consent_url") or "")
            opened = False
            if consent and ctx.can_open_browser:
                opened = yield OpenBrowser(consent)
            if consent and not opened:
                yield Notice(f"Open {consent} to approve the request")
        if ctx.clock() - started > ctx.authorization_timeout:
            raise AuthorizationExpired("no decision before the client stopped waiting")
        yield Sleep(float(body.get("interval") or DEFAULT_POLL_INTERVAL))
        reply = yield HttpCall("GET", poll_url)
