"""Token introspection (RFC 7662), authenticated by the token holder itself.

Public clients have no client secret, so the caller authenticates with its own bearer
token (``Authorization: Bearer okap_...``) and may introspect only that token (§2.1 lets
the server choose the authentication; §4 says to limit what a caller learns). Anything
else, including another app's token, answers ``{"active": false}``.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from okap_server.accounts.models import Account
from okap_server.authorization.bearer import active_grant, find_grant, is_active
from okap_server.authorization.delegation import chain_is_live, delegation_view
from okap_server.authorization.errors import InvalidRequest
from okap_server.authorization.grants import public_details
from okap_server.authorization.models import Grant
from okap_server.proxy.providers.catalog import ProviderCatalog
from okap_server.proxy.usage import grant_ceilings, usage_report
from okap_server.settings import Settings


def introspect(
    session: Session,
    authorization: str | None,
    token: str | None,
    settings: Settings,
    catalog: ProviderCatalog,
) -> dict[str, Any]:
    """The introspection answer; ``usage`` is the proxy's budget report (SPEC.md)."""
    public_url = settings.effective_public_url
    caller = active_grant(session, authorization)
    if not token:
        raise InvalidRequest("token is required")
    grant = find_grant(session, token)
    if grant is None or grant.id != caller.id or not is_active(session, grant):
        return {"active": False}
    if not chain_is_live(session, grant):  # a child ends with its ancestors
        return {"active": False}
    chain = delegation_view(grant)
    act = {"act": chain["act"]} if "act" in chain else {}  # RFC 8693 §4.1
    return {
        "active": True,
        "token_type": "Bearer",
        "client_id": grant.client_id,
        "iat": int(grant.created_at.timestamp()),
        "exp": int(grant.expires_at.timestamp()),
        "iss": public_url,
        "grant_id": grant.id,
        "authorization_details": public_details(grant.details, public_url),
        "usage": usage_report(session, grant, settings, catalog=catalog),
        **_ceilings(session, grant),
        **act,
        "delegation": chain,
    }


def _ceilings(session: Session, grant: Grant) -> dict[str, Any]:
    """The ceilings above the grant (``/okap/usage`` shows the same)."""
    account = session.get(Account, grant.account_id)
    return {} if account is None else {"ceilings": grant_ceilings(session, grant, account)}
