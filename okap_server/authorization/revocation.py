"""Token revocation (RFC 7009) for public clients: holding the token is the proof.

An app gives its own token back. Unknown or already revoked tokens also answer 200
(§2.2), so the endpoint tells nothing to someone probing it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, select

from okap_server.audit.events import record_event
from okap_server.authorization.delegation import descendants_of
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
    """Mark a grant revoked, and every grant delegated from it (RFC 8693: a child is only
    as alive as its parent), and audit each. The caller commits and calls ``grant_changed``
    with this grant's id: the proxy's caches index a child's view under its ancestors too,
    so that one notification drops the whole subtree on every replica. Revoking a child
    leaves its parent alone."""
    if grant.revoked_at is not None:
        return False
    now = utcnow()
    for revoked, how in [(grant, by), *((d, "cascade") for d in descendants_of(session, grant))]:
        if revoked.revoked_at is not None:
            continue
        revoked.revoked_at = now
        revoked.version += 1
        session.add(revoked)
        record_event(
            session,
            "grant_revoked",
            account_id=account_id or revoked.account_id,
            ip=ip,
            grant_id=revoked.id,
            client_id=revoked.client_id,
            by=how,
        )
        webhook_events.grant_revoked(session, revoked, by=how)
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
