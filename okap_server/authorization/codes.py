"""Authorization codes (RFC 6749 §4.1.2, RFC 9700 §4.5): single use, short-lived, bound.

A code is bound to its client_id, redirect_uri and PKCE challenge. Redemption is one
conditional UPDATE (``used_at IS NULL``), so two concurrent redemptions cannot both win
(Authlib's code grant does a read then a delete, which can). A second presentation of a
code is a replay: it is refused and the grant issued from the code is revoked
(RFC 6749 §4.1.2, "SHOULD revoke").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from okap_server.audit.events import record_event
from okap_server.authorization import pkce
from okap_server.authorization.errors import InvalidGrant
from okap_server.authorization.grants import approver_is_active, issue_grant
from okap_server.authorization.models import AuthorizationCode, AuthorizationRequest, Grant
from okap_server.authorization.requests import status_of
from okap_server.authorization.tokens import new_secret, token_hash
from okap_server.clock import utcnow
from okap_server.webhooks import grant_events as webhook_events


def issue_code(session: Session, request: AuthorizationRequest, ttl_seconds: int) -> str:
    """A new code for an approved code-flow request (the caller commits). Shown once."""
    if not request.redirect_uri or not request.code_challenge:
        raise ValueError("a code needs a redirect_uri and a PKCE challenge")
    code = new_secret(32)
    session.add(
        AuthorizationCode(
            code_hash=token_hash(code),
            request_id=request.id,
            client_id=request.client_id,
            redirect_uri=request.redirect_uri,
            code_challenge=request.code_challenge,
            expires_at=utcnow() + timedelta(seconds=min(ttl_seconds, 60)),
        )
    )
    return code


def _revoke_after_replay(
    session: Session, row: AuthorizationCode, on_revoked: Callable[[str], None]
) -> InvalidGrant:
    grant = session.get(Grant, row.grant_id) if row.grant_id else None
    if grant is not None and grant.revoked_at is None:
        grant.revoked_at = utcnow()
        grant.version += 1
        session.add(grant)
        webhook_events.grant_revoked(session, grant, by="code_replayed")
    record_event(
        session,
        "code_replayed",
        account_id=grant.account_id if grant else None,
        grant_id=row.grant_id,
        client_id=row.client_id,
    )
    session.commit()
    if grant is not None:
        on_revoked(grant.id)
    return InvalidGrant("the authorization code was already used; its token is now revoked")


def redeem(
    session: Session,
    *,
    code: str,
    client_id: str,
    redirect_uri: str | None,
    verifier: str | None,
    on_revoked: Callable[[str], None],
) -> tuple[Grant, str]:
    """Exchange a code for a new grant and its token; every failure is ``invalid_grant``."""
    row = session.get(AuthorizationCode, token_hash(code))
    if row is None:
        raise InvalidGrant("unknown authorization code")
    if row.used_at is not None:
        raise _revoke_after_replay(session, row, on_revoked)
    if row.expires_at <= utcnow():
        raise InvalidGrant("the authorization code has expired")
    if row.client_id != client_id:
        raise InvalidGrant("the code was issued to another client_id")
    if row.redirect_uri != redirect_uri:
        raise InvalidGrant("redirect_uri does not match the one used at /oauth/authorize")
    pkce.verify(row.code_challenge, verifier)
    won = session.execute(
        update(AuthorizationCode)
        .where(
            col(AuthorizationCode.code_hash) == row.code_hash,
            col(AuthorizationCode.used_at).is_(None),
        )
        .values(used_at=utcnow())
    )
    if getattr(won, "rowcount", 0) != 1:
        session.rollback()
        session.refresh(row)
        raise _revoke_after_replay(session, row, on_revoked)
    request = session.get(AuthorizationRequest, row.request_id)
    if (
        request is None
        or status_of(request) != "approved"
        or request.token_delivered
        or not approver_is_active(session, request)
    ):
        session.rollback()
        raise InvalidGrant("the authorization was withdrawn")
    request.token_delivered = True
    grant, token = issue_grant(session, request)
    session.execute(
        update(AuthorizationCode)
        .where(col(AuthorizationCode.code_hash) == row.code_hash)
        .values(grant_id=grant.id)
    )
    session.commit()
    return grant, token
