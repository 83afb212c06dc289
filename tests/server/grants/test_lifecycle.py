"""A grant's changes reach the listeners (the proxy's cache, the other replicas) only once
committed, exactly once per commit, and never for a change rolled back."""

from __future__ import annotations

from sqlmodel import select

from okap_server.audit.models import SecurityEvent
from okap_server.context import Vault
from okap_server.grants import lifecycle
from okap_server.grants.models import Grant
from tests.support.grants import make_grant


def _listen(vault: Vault) -> list[str]:
    heard: list[str] = []
    vault.grant_listeners.append(heard.append)
    return heard


def test_revoke_is_heard_after_the_commit_not_before(vault: Vault) -> None:
    issued = make_grant(vault)
    heard = _listen(vault)
    with vault.session() as session:
        grant = session.get(Grant, issued.grant_id)
        assert grant is not None
        before = grant.version
        assert lifecycle.revoke(session, grant, by="person", ip="192.0.2.1")
        assert heard == []  # not committed yet: a replica would reload the old row
        session.commit()
        assert heard == [issued.grant_id]
        assert grant.revoked_at is not None and grant.version == before + 1
        assert not lifecycle.revoke(session, grant, by="person")  # once
        session.commit()
    assert heard == [issued.grant_id]
    with vault.session() as session:
        kinds = [
            e.kind
            for e in session.exec(select(SecurityEvent))
            if e.detail.get("grant_id") == issued.grant_id
        ]
    assert kinds == ["grant_revoked"]


def test_a_rolled_back_change_is_never_heard(vault: Vault) -> None:
    issued = make_grant(vault)
    heard = _listen(vault)
    with vault.session() as session:
        grant = session.get(Grant, issued.grant_id)
        assert grant is not None
        lifecycle.changed(session, grant)
        session.rollback()
        session.commit()  # a later commit of the same session sends nothing stale
    assert heard == []
    with vault.session() as session:
        grant = session.get(Grant, issued.grant_id)
        assert grant is not None and grant.revoked_at is None and grant.version == 1


def test_each_grant_is_heard_once_per_commit(vault: Vault) -> None:
    first, second = make_grant(vault), make_grant(vault, client_name="Other")
    heard = _listen(vault)
    with vault.session() as session:
        lifecycle.notify_after_commit(session, first.grant_id)
        lifecycle.notify_after_commit(session, second.grant_id)
        lifecycle.notify_after_commit(session, first.grant_id)
        session.commit()
        assert heard == [first.grant_id, second.grant_id]
        session.commit()
    assert heard == [first.grant_id, second.grant_id]
