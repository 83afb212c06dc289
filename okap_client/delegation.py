"""Delegation (RFC 8693 token exchange): a narrower child of a token, for a sub-agent, a
job or one of the app's own users. No I/O here: the twins send the call.

The child asks only for what it narrows; the vault fills in the rest from the parent
(its models, capabilities, every limit it did not name, its expiry) and refuses anything
wider with ``invalid_authorization_details`` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from okap_client.errors import OkapError, error_from_body
from okap_client.flows import HttpCall, Reply
from okap_client.request import canonical_provider
from okap_client.token import OkapToken

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class DelegationRefused(OkapError):
    """The vault will not delegate this token: it is not active, its person forbade
    delegating it, or the chain is as deep as the vault allows (``invalid_grant``)."""

    default_error = "invalid_grant"


class DelegateOptions(TypedDict, total=False):
    """What ``delegate`` narrows; anything left out is the parent's."""

    provider: str
    models: Sequence[str]
    capabilities: Sequence[str]
    limits: Mapping[str, float | int | None]
    expires_in: float
    client_name: str


def delegation_details(
    token: OkapToken,
    *,
    provider: str | None = None,
    models: Sequence[str] | None = None,
    capabilities: Sequence[str] | None = None,
    limits: Mapping[str, float | int | None] | None = None,
    expires_in: float | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The child's ``authorization_details``: one entry per provider of the token (or only
    ``provider``), naming only what narrows it."""
    entries = [token.detail_for(provider)] if provider else token.authorization_details
    expires = None
    if expires_in is not None:
        moment = (now or datetime.now(UTC)) + timedelta(seconds=expires_in)
        expires = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    child = []
    for entry in entries:
        item: dict[str, Any] = {
            "type": "ai_model_access",
            "provider": canonical_provider(str(entry.get("provider", ""))),
        }
        if models is not None:
            item["models"] = list(models)
        if capabilities is not None:
            item["capabilities"] = list(capabilities)
        if limits:
            item["limits"] = dict(limits)
        if expires is not None:
            item["expires"] = expires
        child.append(item)
    return child


def delegate_call(
    token: OkapToken, token_endpoint: str, details: list[dict[str, Any]], client_name: str | None
) -> HttpCall:
    """``POST /oauth/token`` with the token-exchange grant (RFC 8693 §2.1)."""
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": token.key,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "authorization_details": json.dumps(details),
    }
    if client_name:
        form["client_name"] = client_name
    return HttpCall("POST", token_endpoint, form)


def read_delegated(reply: Reply, vault_url: str, now: datetime) -> OkapToken:
    """The child token, or the vault's refusal as a typed error."""
    if reply.status == 200 and isinstance(reply.body, Mapping):
        return OkapToken.from_token_response(reply.body, vault_url, now)
    body = reply.body if isinstance(reply.body, Mapping) else {}
    if body.get("error") == "invalid_grant":
        raise DelegationRefused(str(body.get("error_description") or ""))
    raise error_from_body(reply.status, reply.body)
