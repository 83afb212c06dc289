"""One account's keys are its own: a forged consent form cannot back a grant with another
account's key, or with a key of another provider."""

from __future__ import annotations

import httpx
from sqlmodel import select

from okap_server.accounts.service import create_account
from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault
from okap_server.grants.models import Grant
from tests.security.conftest import sqlite_only
from tests.server.authorization.conftest import RedirectListener, start_code_flow
from tests.support.person import Person


@sqlite_only
def test_a_forged_key_id_cannot_borrow_another_accounts_key(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    with vault.session() as session:
        bob = create_account(session, "bob", "bob's long password")
        session.commit()
        bobs = vault.keys.add(
            session, account_id=bob.id, provider="openai", label="bob", secret="sk-bob-" + "b" * 40
        )
        own_anthropic = vault.keys.add(
            session,
            account_id=person_account(vault, person.username),
            provider="anthropic",
            label="mine",
            secret="sk-ant-api03-" + "c" * 40,
        )
        session.commit()
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri)
    for forged in (bobs.id, own_anthropic.id, "key_does_not_exist"):
        decision = person.approve(consent, key_id=forged, check=False)
        assert decision.status_code in (400, 403, 404, 422), forged
    with vault.session() as session:
        assert session.exec(select(Grant)).all() == []
        assert session.exec(select(AuthorizationRequest)).one().status == "pending"
    # With its own key the same approval goes through, backed by that key.
    assert person.approve(consent, key_id=openai_key).location is not None
    with vault.session() as session:
        request = session.exec(select(AuthorizationRequest)).one()
    assert request.status == "approved"
    assert request.granted_details is not None
    assert [d["key_id"] for d in request.granted_details] == [openai_key]


def person_account(vault: Vault, username: str) -> str:
    from okap_server.accounts.service import find_account

    with vault.session() as session:
        account = find_account(session, username)
        assert account is not None
        return account.id
