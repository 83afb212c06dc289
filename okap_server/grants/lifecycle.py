"""A grant's changes, and the notice every replica gets once they are committed.

A revoked or edited grant must stop being served from any replica's grant cache
(``proxy/grant_cache.py``, ``proxy/notify.py``). The notice may only go out after the
change is committed: sent before, a replica could reload the old row; not sent at all, a
revoked token keeps working until the cache entry expires. So the functions here change
the row and *queue* the notice on the SQLAlchemy session; the session sends it from its
``after_commit`` event, and drops it on rollback. Callers commit as usual and never call
``Vault.grant_changed`` themselves.

The session learns where notices go from ``bind`` (``Vault.session`` binds every session it
opens). A session nobody bound (a one-off command's) has no cache to tell: nothing is sent.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlmodel import Session

from okap_server.audit.events import record_event
from okap_server.clock import utcnow
from okap_server.grants.models import Grant
from okap_server.grants.tree import descendants_of
from okap_server.webhooks import grant_events as webhook_events

# Keys in ``Session.info``: where notices go, the grant ids waiting for the commit, and
# whether this session's commit and rollback events are listened to yet.
_NOTIFY = "okap.grant_changed"
_PENDING = "okap.changed_grants"
_LISTENING = "okap.listening"


def bind(session: Session, notify: Callable[[str], None]) -> Session:
    """Have ``session`` tell ``notify`` each changed grant's id after each commit. Cheap:
    the session's events are listened to only once a change is queued, so the sessions
    that change no grant (most of them, and the proxy's) pay nothing."""
    session.info[_NOTIFY] = notify
    return session


def _send(session: Session) -> None:
    pending: list[str] = session.info.pop(_PENDING, [])
    notify: Callable[[str], None] | None = session.info.get(_NOTIFY)
    if notify is None:
        return
    for grant_id in dict.fromkeys(pending):  # once each, in order
        notify(grant_id)


def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)


def changed(session: Session, grant: Grant) -> None:
    """Record that ``grant`` changed (its limits, key, token or state): its version is
    bumped and every replica hears of it once the session commits. The caller commits."""
    grant.version += 1
    session.add(grant)
    notify_after_commit(session, grant.id)


def notify_after_commit(session: Session, grant_id: str) -> None:
    """Queue a notice for ``grant_id`` without touching the row: a change above the grant
    (an account's or a key's ceiling, a key's secret) that its cached view must see."""
    if not session.info.get(_LISTENING):
        event.listen(session, "after_commit", _send)
        event.listen(session, "after_rollback", _drop)
        session.info[_LISTENING] = True
    session.info.setdefault(_PENDING, []).append(grant_id)


def mark_revoked(session: Session, grant: Grant, *, by: str) -> bool:
    """Mark ``grant`` revoked, queue the replicas' notice and its ``grant.revoked`` webhook
    event (in this transaction), without the ``grant_revoked`` audit: for a caller that
    records its own event (a replayed code, RFC 6749 §4.1.2). Its descendants are left to
    ``revoke``; the proxy refuses them anyway once an ancestor is revoked. False if it was
    revoked already. The caller commits."""
    if grant.revoked_at is not None:
        return False
    grant.revoked_at = utcnow()
    changed(session, grant)
    webhook_events.grant_revoked(session, grant, by=by)
    return True


def revoke(
    session: Session,
    grant: Grant,
    *,
    by: str,
    account_id: str | None = None,
    ip: str | None = None,
) -> bool:
    """Mark ``grant`` revoked and every grant delegated from it (RFC 8693: a child is only
    as alive as its parent), audit each (``by`` the app, the person or an admin; a
    descendant ``by: cascade``) and queue the replicas' notice and the webhook event of
    each. Revoking a child leaves its parent alone. False, and nothing recorded, if it was
    revoked already. The caller commits."""
    if grant.revoked_at is not None:
        return False
    _revoke_all(session, [(grant, by)], account_id=account_id, ip=ip)
    revoke_descendants(session, grant, account_id=account_id, ip=ip)
    return True


def revoke_descendants(
    session: Session, grant: Grant, *, account_id: str | None = None, ip: str | None = None
) -> int:
    """Revoke every grant delegated from ``grant`` (``by: cascade``), leaving ``grant``
    itself: what its revocation does, and what a new token for it does (a token that
    leaked may have been exchanged; its children must not outlive the regeneration that
    was meant to cut the leaker off). How many were revoked. The caller commits."""
    below = [(d, "cascade") for d in descendants_of(session, grant)]
    return _revoke_all(session, below, account_id=account_id, ip=ip)


def _revoke_all(
    session: Session,
    grants: list[tuple[Grant, str]],
    *,
    account_id: str | None,
    ip: str | None,
) -> int:
    done = 0
    for revoked, how in grants:
        if not mark_revoked(session, revoked, by=how):
            continue
        done += 1
        record_event(
            session,
            "grant_revoked",
            account_id=account_id or revoked.account_id,
            ip=ip,
            grant_id=revoked.id,
            client_id=revoked.client_id,
            by=how,
        )
    return done
