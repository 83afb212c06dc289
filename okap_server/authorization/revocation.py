"""Token revocation (RFC 7009) for public clients: holding the token is the proof.

An app gives its own token back. Unknown or already revoked tokens also answer 200
(§2.2), so the endpoint tells nothing to someone probing it.
"""

from __future__ import annotations

from sqlmodel import Session, select

from okap_server.authorization.errors import InvalidRequest, OAuthError
from okap_server.grants import lifecycle
from okap_server.grants.models import Grant
from okap_server.grants.tokens import looks_like_token, token_hash


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1."""

    error = "unsupported_token_type"


def revoke_token(
    session: Session,
    token: str | None,
    token_type_hint: str | None,
    ip: str | None = None,
) -> None:
    """Revoke the grant ``token`` carries; the replicas hear of it once this commits."""
    if not token:
        raise InvalidRequest("token is required")
    if token_type_hint not in (None, "", "access_token"):
        raise UnsupportedTokenType("okap issues access tokens only")
    if not looks_like_token(token):
        return
    grant = session.exec(select(Grant).where(Grant.token_hash == token_hash(token))).first()
    if grant is None:
        return
    if lifecycle.revoke(session, grant, by="app", ip=ip):
        session.commit()
