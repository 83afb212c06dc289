"""Token revocation (RFC 7009) for public clients: holding the token is the proof.

An app gives its own token back. Unknown or already revoked tokens also answer 200
(§2.2), so the endpoint tells nothing to someone probing it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, select

from okap_server.audit.events import record_event
from okap_server.authorization.errors import InvalidRequest, OAuthError
from okap_server.authorization.models import Grant
from okap_server.authorization.tokens import looks_like_token, token_hash
from okap_server.clock import utcnow
from okap_server.webhooks import grant_events as webhook_events


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1."""

    error = "unsupported_token_type"


def revoke_grant(
    session: Session,
    grant: Grant,
    *,
    by: str,
    account_id: str | None = None,
    ip: str | None = None,
) -> bool:
    """Mark a grant revoked and audit it (the caller commits and calls ``grant_changed``)."""
    if grant.revoked_at is not None:
        return False
    grant.revoked_at = utcnow()
    grant.version += 1
    session.add(grant)
    record_event(
        session,
        "grant_revoked",
        account_id=account_id or grant.account_id,
        ip=ip,
        grant_id=grant.id,
        client_id=grant.client_id,
        by=by,
    )
    webhook_events.grant_revoked(session, grant, by=by)
    return True


def revoke_token(
    session: Session,
    token: str | None,
    token_type_hint: str | None,
    on_revoked: Callable[[str], None],
    ip: str | None = None,
) -> None:
    if not token:
        raise InvalidRequest("token is required")
    if token_type_hint not in (None, "", "access_token"):
        raise UnsupportedTokenType("okap issues access tokens only")
    if not looks_like_token(token):
        return
    grant = session.exec(select(Grant).where(Grant.token_hash == token_hash(token))).first()
    if grant is None:
        return
    if revoke_grant(session, grant, by="app", ip=ip):
        session.commit()
        on_revoked(grant.id)
