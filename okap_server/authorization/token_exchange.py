"""The token-exchange grant (RFC 8693): a grant's holder mints a narrower child token.

``POST /oauth/token`` with ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``,
an okap access token as ``subject_token`` (``subject_token_type`` access_token, §3) and the
child's ``authorization_details`` (RFC 9396 §6: RAR at the token endpoint). The child is a
new grant under the same account: a subset of its parent (``attenuation.py``), its parent
and ancestors recorded (§4.1 ``act``), its spend counted against every ancestor's limits
too (the proxy's admission). Nothing is written unless everything holds.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, func, select

from okap_server.accounts.models import Account
from okap_server.audit.events import record_event
from okap_server.authorization.attenuation import attenuate
from okap_server.authorization.bearer import find_grant, is_active
from okap_server.authorization.clients import MAX_CLIENT_ID
from okap_server.authorization.details import loads_strict
from okap_server.authorization.display_text import check_display_text, hidden_problem
from okap_server.authorization.errors import InvalidGrant, InvalidRequest
from okap_server.authorization.grants import grant_expiry, public_details
from okap_server.catalog import ProviderCatalog
from okap_server.clock import utcnow
from okap_server.grants.details import stored
from okap_server.grants.models import Grant
from okap_server.grants.tokens import new_access_token, token_hash
from okap_server.grants.tree import chain_is_live
from okap_server.settings import Settings
from okap_server.webhooks.events import emit_token_delegated

TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
MAX_CLIENT_NAME = 200


def _subject(session: Session, params: dict[str, str]) -> Grant:
    """The grant the subject token carries, live with its whole chain, or an error."""
    subject_type = params.get("subject_token_type")
    if not subject_type:
        raise InvalidRequest("subject_token_type is required")
    if subject_type != ACCESS_TOKEN_TYPE:
        raise InvalidRequest(f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
    requested = params.get("requested_token_type")
    if requested and requested != ACCESS_TOKEN_TYPE:
        raise InvalidRequest(f"requested_token_type must be {ACCESS_TOKEN_TYPE}")
    if params.get("actor_token") or params.get("actor_token_type"):
        raise InvalidRequest("actor_token is not supported: the subject token's holder acts")
    subject = params.get("subject_token")
    if not subject:
        raise InvalidRequest("subject_token is required")
    grant = find_grant(session, subject)
    if grant is None or not is_active(session, grant) or not chain_is_live(session, grant):
        raise InvalidGrant("the subject_token is not an active access token of this vault")
    return grant


def _client_name(params: dict[str, str], parent: Grant) -> str:
    name = params.get("client_name")
    if name is None:
        return f"{parent.client_name} (delegated)"[:MAX_CLIENT_NAME]
    problem = hidden_problem(name)
    if problem or not name.strip() or len(name) > MAX_CLIENT_NAME:
        raise InvalidRequest(f"client_name: {problem or 'must be 1-200 visible characters'}")
    return name.strip()


def _client_id(params: dict[str, str], parent: Grant) -> str:
    """The child's client id: shown on the dashboard and stored, so held to the front
    doors' rules (``clients.check_client_id``), but a refusal here is ``invalid_request``:
    the token endpoint's client is the subject token's holder, not this optional field."""
    return check_display_text("client_id", params.get("client_id"), MAX_CLIENT_ID) or (
        parent.client_id
    )


def _check_room(session: Session, parent: Grant, settings: Settings) -> None:
    """At most ``delegation_max_children`` live children per grant: one token must not be
    able to fill the database and the person's dashboard with children (a flood the
    per-source rate limit only slows down)."""
    live = session.exec(
        select(func.count())
        .select_from(Grant)
        .where(
            col(Grant.parent_grant_id) == parent.id,
            col(Grant.revoked_at).is_(None),
            col(Grant.expires_at) > utcnow(),
        )
    ).one()
    if int(live) >= settings.delegation_max_children:
        raise InvalidGrant(
            "this grant has too many delegated tokens: this vault allows "
            f"{settings.delegation_max_children} live children per grant; revoke some first"
        )


def exchange(
    session: Session, params: dict[str, str], catalog: ProviderCatalog, settings: Settings
) -> tuple[Grant, str]:
    """Issue a child of the subject token's grant; the caller has the session, and this
    commits. Errors: ``invalid_request`` (a missing or wrong parameter), ``invalid_grant``
    (the subject token, a grant that may not be delegated, or one with too many live
    children), ``invalid_authorization_
    details`` (the first field wider than the parent)."""
    parent = _subject(session, params)
    if not parent.delegation_allowed:
        raise InvalidGrant("the person who approved this grant does not allow delegating it")
    if parent.depth + 1 > settings.delegation_max_depth:
        raise InvalidGrant(
            f"delegation depth limit reached: this vault allows {settings.delegation_max_depth} "
            "levels below a grant a person approved"
        )
    client_id = _client_id(params, parent)
    _check_room(session, parent, settings)
    text = params.get("authorization_details")
    if not text:
        raise InvalidRequest("authorization_details is required: the child's narrower request")
    now = utcnow()
    details = attenuate(
        loads_strict(text), parent.details, parent.expires_at, catalog, settings, now
    )
    client_name = _client_name(params, parent)
    token = new_access_token()
    act: dict[str, Any] = {"sub": parent.client_id, "grant_id": parent.id}
    if parent.act:
        act["act"] = parent.act
    child = Grant(
        account_id=parent.account_id,
        token_hash=token_hash(token),
        client_id=client_id,
        client_name=client_name,
        client_url=parent.client_url,
        redirect_host=parent.redirect_host,
        flow="exchange",
        details=stored(details),
        expires_at=min(grant_expiry(details), parent.expires_at),
        parent_grant_id=parent.id,
        ancestry=[*(parent.ancestry or []), parent.id],
        act=act,
        delegation_allowed=True,
    )
    account = session.get(Account, parent.account_id)
    if account is None or account.disabled:
        raise InvalidGrant("the subject_token is not an active access token of this vault")
    session.add(child)
    record_event(
        session,
        "grant_delegated",
        account_id=parent.account_id,
        grant_id=child.id,
        client_id=child.client_id,
        parent_grant_id=parent.id,
        depth=child.depth,
    )
    emit_token_delegated(  # in this transaction: the event commits with the child
        session,
        parent.account_id,
        parent_grant_id=parent.id,
        grant_id=child.id,
        client_id=child.client_id,
        client_name=child.client_name,
        details=details,
    )
    session.commit()
    return child, token


def exchange_response(grant: Grant, token: str, public_url: str) -> dict[str, Any]:
    """RFC 8693 §2.2.1, plus the granted ``authorization_details`` (RFC 9396 §7)."""
    expires_in = max(0, int((grant.expires_at - utcnow()).total_seconds()))
    return {
        "access_token": token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "authorization_details": public_details(grant.details, public_url),
    }
