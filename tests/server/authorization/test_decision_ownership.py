"""Who may decide a request (issue 15, cross-account decisions).

A device request is decided only by the account that typed its user code; any other
request only by the account that first acted on it (a POST: its consent form or the
Pending list). Nobody else sees it listed, and every decision path refuses them, so the
user code cannot be bypassed and nobody's app runs on another member's key."""

from __future__ import annotations

import re
import threading
from typing import Any

import httpx
import pytest
from sqlmodel import select

from okap_server.accounts.service import create_account, find_account
from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault
from okap_server.grants.models import Grant
from tests.support.person import Person, PersonError

BOB = ("bob", "bob's long password")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DETAILS = '[{"type": "ai_model_access", "provider": "openai"}]'


@pytest.fixture
def bob(vault: Vault, live_url: str) -> Any:
    """A second member with an OpenAI key of his own."""
    with vault.session() as session:
        account = create_account(session, *BOB)
        session.commit()
        vault.keys.add(
            session, account_id=account.id, provider="openai", label="bob", secret="sk-bob-" * 6
        )
        session.commit()
    with Person(live_url, *BOB) as someone:
        yield someone


def from_the_list(person: Person, request_id: str, action: str) -> httpx.Response:
    """POST /pending/{id}/approve|deny as the list's button would (with a CSRF token)."""
    page = person.open("/device").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return person.client.post(
        f"/pending/{request_id}/{action}", data={"csrf_token": match.group(1)}
    )


def start_device(app: httpx.Client) -> dict[str, Any]:
    response = app.post(
        "/oauth/device_authorization",
        data={"client_id": "okap-cli", "authorization_details": DETAILS},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def poll(app: httpx.Client, device_code: str) -> httpx.Response:
    return app.post(
        "/oauth/token",
        data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": "okap-cli"},
    )


def only_request(vault: Vault) -> AuthorizationRequest:
    with vault.session() as session:
        return session.exec(select(AuthorizationRequest)).one()


def account_id(vault: Vault, username: str) -> str:
    with vault.session() as session:
        account = find_account(session, username)
        assert account is not None
        return account.id


def test_a_device_request_is_decided_only_by_the_account_that_typed_its_code(
    live_url: str, page_url: str, vault: Vault, person: Person, openai_key: str, bob: Person
) -> None:
    with httpx.Client(base_url=live_url) as app:
        started = start_device(app)
        row = only_request(vault)
        consent = f"{page_url}/consent/{row.id}"
        # Before anyone typed the code, no account sees it or can take it.
        for someone in (person, bob):
            assert someone.pending() == []
            assert "Notes" not in someone.open("/pending").text
            assert from_the_list(someone, row.id, "approve").status_code == 404
            shown = someone.approve(consent, check=False)
            assert shown.status_code == 403 and "Enter the code" in shown.message
        assert only_request(vault).status == "pending"
        # Alice types the code: it is hers, and Bob can neither type it too nor decide it.
        assert person.enter_user_code(started["user_code"]) == consent
        with pytest.raises(PersonError, match="Another account"):
            bob.enter_user_code(started["user_code"])
        assert bob.pending() == []
        assert bob.approve(consent, check=False).status_code == 403
        assert bob.deny(consent, check=False).status_code == 403
        assert from_the_list(bob, row.id, "approve").status_code == 404
        assert from_the_list(bob, row.id, "deny").status_code == 404
        assert person.pending() == [consent]
        person.approve(consent)
        token = poll(app, started["device_code"])
    assert token.status_code == 200, token.text
    with vault.session() as session:
        [grant] = session.exec(select(Grant)).all()
    assert grant.account_id == account_id(vault, person.username)


def test_a_lone_account_cannot_skip_the_user_code_from_the_list(
    live_url: str, vault: Vault, person: Person, openai_key: str
) -> None:
    """RFC 8628 §5.4: a device request is approved only after its code was typed, even in a
    vault of one account (else anyone could start a flow and hope it gets waved through)."""
    with httpx.Client(base_url=live_url) as app:
        start_device(app)
    row = only_request(vault)
    assert person.pending() == []
    assert from_the_list(person, row.id, "approve").status_code == 404
    shown = person.approve(f"{live_url}/consent/{row.id}", check=False)
    assert shown.status_code == 403
    assert only_request(vault).status == "pending"


def ask_okap(live_url: str) -> dict[str, Any]:
    body = {
        "okap": "1.0",
        "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
        "client": {"name": "Victim's App"},
    }
    answer = httpx.post(f"{live_url}/okap/authorize", json=body, headers={"Prefer": "wait=0"})
    assert answer.json()["status"] == "pending"
    return dict(answer.json())


def test_an_okap_request_is_decided_only_by_the_account_that_claimed_it(
    live_url: str, vault: Vault, person: Person, openai_key: str, bob: Person
) -> None:
    asked = ask_okap(live_url)
    consent = asked["consent_url"]
    request_id = consent.rsplit("/", 1)[1]
    # A team vault lists nobody's unclaimed request: only its consent link leads to it.
    assert person.pending() == [] and bob.pending() == []
    assert person.open(consent).status_code == 200  # looking claims nothing
    assert only_request(vault).decided_by is None
    # Alice acts first: even an Approve the page refuses binds the request to her.
    assert person.approve(consent, limits={"daily_spend": -1}, check=False).status_code == 422
    assert only_request(vault).decided_by == account_id(vault, person.username)
    refused = bob.approve(consent, check=False)
    assert refused.status_code == 403 and "Another account" in refused.message
    assert bob.deny(consent, check=False).status_code == 403
    assert from_the_list(bob, request_id, "approve").status_code == 404
    assert from_the_list(bob, request_id, "deny").status_code == 404
    assert bob.pending() == []
    assert person.pending() == [consent]
    assert only_request(vault).status == "pending"
    person.approve(consent)
    granted = httpx.get(asked["poll_url"]).json()
    assert granted["status"] == "granted"
    with vault.session() as session:
        [grant] = session.exec(select(Grant)).all()
    assert grant.account_id == account_id(vault, person.username)


def test_two_accounts_approving_at_once_one_wins(
    live_url: str, vault: Vault, person: Person, openai_key: str, bob: Person
) -> None:
    consent = ask_okap(live_url)["consent_url"]
    pages = {p.username: p.open(consent) for p in (person, bob)}
    assert all(page.status_code == 200 for page in pages.values())
    results: dict[str, int] = {}
    ready = threading.Barrier(2)

    def approve(someone: Person) -> None:
        form = someone.form_of(pages[someone.username].text, "/consent/")
        ready.wait()
        data: dict[str, list[str]] = {"decision": ["approve"]}
        for name, value in form.fields:
            data.setdefault(name, []).append(value)
        answer = someone.client.post(form.action, data=data)
        results[someone.username] = answer.status_code

    threads = [threading.Thread(target=approve, args=(p,)) for p in (person, bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(results.values()) == [200, 403], results
    row = only_request(vault)
    winner = next(name for name, status in results.items() if status == 200)
    assert row.status == "approved" and row.decided_by == account_id(vault, winner)
