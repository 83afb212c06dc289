"""Regenerating an app's token: what a person does when the token leaked.

The grant stays (its id, details, limits, spend and request counts, history), so nothing
needs consent again. Only its one token changes: the old token is revoked at once (RFC 7009
§2: afterwards the vault treats it as unknown, and introspection answers
``active: false``), and the new one is returned to the caller to show once, as at
consent, since only its hash is stored. Every front door (dashboard, management API)
calls ``regenerate_token``.
"""

from __future__ import annotations

from sqlmodel import col, select

from okap_server.audit.events import record_event
from okap_server.authorization.reuse import rotate
from okap_server.context import Vault
from okap_server.grants.models import Grant
from okap_server.manage.grants import is_active


class GrantInactive(Exception):
    """The grant is revoked or expired: there is no access to carry a new token."""


def regenerate_token(
    vault: Vault, account_id: str, grant_id: str, *, ip: str | None, via: str
) -> tuple[Grant, str] | None:
    """Give one of this account's live grants a new token; None if the grant is not this
    account's. Raises GrantInactive (nothing changed).

    The row is locked for the change (``FOR UPDATE`` on PostgreSQL), so two people pressing
    the button at once end with one working token, the later one. Every token delegated
    from the old one is revoked with it (``reuse.rotate``). After the commit every cache is
    told (``grants.lifecycle``: this process at once, other replicas through the notify
    channel), so the old token and its children are refused from their next request."""
    with vault.session() as session:
        grant = session.exec(
            select(Grant).where(col(Grant.id) == grant_id[:40]).with_for_update()
        ).first()
        if grant is None or grant.account_id != account_id:
            return None
        if not is_active(grant):
            state = "revoked" if grant.revoked_at is not None else "expired"
            raise GrantInactive(f"this app's access was {state}; the app has to ask again")
        token = rotate(session, grant)
        record_event(
            session,
            "token_regenerated",
            account_id=account_id,
            ip=ip,
            grant_id=grant.id,
            client_id=grant.client_id,
            via=via,
        )
        session.commit()
    return grant, token
