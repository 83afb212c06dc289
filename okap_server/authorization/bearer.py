"""Finding the grant behind an ``Authorization: Bearer okap_...`` header (RFC 6750)."""

from __future__ import annotations

from sqlmodel import Session, select

from okap_server.accounts.models import Account
from okap_server.authorization.errors import InvalidToken
from okap_server.clock import utcnow
from okap_server.grants.models import Grant
from okap_server.grants.tokens import looks_like_token, token_hash


def bearer_value(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def find_grant(session: Session, token: str | None) -> Grant | None:
    """The grant of a well-formed token, active or not; None for anything else."""
    if not token or not looks_like_token(token):
        return None
    return session.exec(select(Grant).where(Grant.token_hash == token_hash(token))).first()


def is_active(session: Session, grant: Grant) -> bool:
    """Not revoked, not expired, and its account not disabled (as the proxy judges it)."""
    if grant.revoked_at is not None or grant.expires_at <= utcnow():
        return False
    account = session.get(Account, grant.account_id)
    return account is not None and not account.disabled


def active_grant(session: Session, authorization: str | None) -> Grant:
    """The caller's own active grant, or ``invalid_token`` (401)."""
    grant = find_grant(session, bearer_value(authorization))
    if grant is None or not is_active(session, grant):
        raise InvalidToken("the bearer token is missing, unknown, expired or revoked")
    return grant
