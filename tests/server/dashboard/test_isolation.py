"""Two accounts on one vault: each sees and touches only its own keys and grants.

Direct POSTs at another account's ids answer 404, the same as an id that does not exist,
and change nothing."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlmodel import select

from okap_server.accounts.models import Account
from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault
from okap_server.grants.models import Grant
from okap_server.vault.models import ProviderKey
from tests.server.dashboard.conftest import Visitor
from tests.support.grants import FAKE_KEYS, entry, make_grant

BOB_KEY = "sk-proj-BOBSECRETkey0123456789abcdefghijQRST"


@pytest.fixture
def alice_and_bob(
    vault: Vault, people: Callable[..., Visitor]
) -> tuple[Visitor, Visitor, str, str]:
    """Alice (admin) and Bob (member); Bob has a key and a grant. Returns their ids."""
    alice = people("alice", admin=True)
    bob = people("bob")
    issued = make_grant(vault, entry("openai"), username="bob", client_name="Bob's Secret App")
    with vault.session() as session:
        key = vault.keys.add(
            session,
            account_id=issued.account_id,
            provider="openai",
            label="bob-work",
            secret=BOB_KEY,
        )
        session.commit()
    return alice, bob, issued.grant_id, key.id


def _grant(vault: Vault, grant_id: str) -> Grant:
    with vault.session() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        return grant


def test_pages_show_only_the_accounts_own_apps_and_keys_and_never_a_secret(
    vault: Vault, alice_and_bob: tuple[Visitor, Visitor, str, str]
) -> None:
    alice, bob, grant_id, key_id = alice_and_bob
    assert "Bob&#39;s Secret App" in bob.page("/").text
    for path in ("/", "/apps", "/keys", "/activity", "/activity.csv"):
        page = alice.page(path)
        assert page.status_code == 200, path
        assert "Bob" not in page.text and "Secret App" not in page.text, path
        assert "QRST" not in page.text and grant_id not in page.text and key_id not in page.text
    assert "...QRST" in bob.page("/keys").text
    assert "gpt" not in alice.page("/activity.csv").text
    for path in (f"/apps/{grant_id}/revoke", f"/keys/{key_id}/remove", "/settings/preferences"):
        missing = bob.post(path, csrf=False)
        wrong = bob.post(path, {"csrf_token": "not-the-token"}, csrf=False)
        assert missing.status_code == wrong.status_code == 403, path
    assert _grant(vault, grant_id).revoked_at is None
    with vault.session() as session:
        assert session.get(ProviderKey, key_id) is not None
    pages = [
        bob.page(p).text
        for p in ("/", f"/apps/{grant_id}", "/keys", f"/keys/{key_id}/remove", "/activity")
    ]
    pages.append(bob.page("/activity.csv").text)
    for text in pages:
        assert BOB_KEY not in text and FAKE_KEYS["openai"] not in text


OTHER_ACCOUNTS_URLS = [
    ("get", "/apps/{grant}"),
    ("get", "/apps/{grant}/limits"),
    ("post", "/apps/{grant}/revoke"),
    ("post", "/apps/{grant}/limits"),
    ("get", "/keys/{key}/remove"),
    ("post", "/keys/{key}/remove"),
    ("post", "/keys/{key}/default"),
    ("post", "/keys/{key}/test"),
]


def test_another_accounts_ids_are_not_found_and_nothing_changes(
    vault: Vault, alice_and_bob: tuple[Visitor, Visitor, str, str]
) -> None:
    alice, _bob, grant_id, key_id = alice_and_bob
    before = _grant(vault, grant_id)
    for method, path in OTHER_ACCOUNTS_URLS:
        url = path.format(grant=grant_id, key=key_id)
        if method == "get":
            response = alice.page(url)
        else:
            response = alice.post(url, {"p0.monthly_spend": "999999", "p0.requests_per_day": "5"})
        assert response.status_code == 404, (method, url)
        assert "There is no such" in response.text
    theirs = alice.post(f"/apps/{grant_id}/revoke")
    missing = alice.post("/apps/grt_doesnotexist/revoke")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.text == missing.text  # nothing tells "not yours" from "does not exist"
    after = _grant(vault, grant_id)
    assert after.revoked_at is None and after.details == before.details
    assert after.version == before.version
    with vault.session() as session:
        key = session.get(ProviderKey, key_id)
        assert key is not None and key.account_id == before.account_id
        assert key.is_default is False  # the "make default" POST did nothing


def test_claimed_requests_and_admin_pages_are_out_of_reach(
    vault: Vault, live_url: str, alice_and_bob: tuple[Visitor, Visitor, str, str]
) -> None:
    alice, bob, _grant, _key = alice_and_bob
    asked = httpx.post(
        f"{live_url}/okap/authorize",
        json={
            "okap": "1.0",
            "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
            "client": {"name": "Claimed App"},
        },
    ).json()
    assert asked["status"] == "pending"
    assert "Claimed App" not in alice.page("/pending").text  # a team vault: nobody's yet
    # Bob acts on it first: even an Approve the page refuses binds it to him.
    refused = bob.approve(asked["consent_url"], limits={"daily_spend": -1}, check=False)
    assert refused.status_code == 422
    assert alice.page(asked["consent_url"]).status_code == 403
    request_id = asked["consent_url"].rsplit("/", 1)[1]
    # Bob posts its form (a choice it refuses, so nothing is decided): it is his now.
    assert bob.post(f"/consent/{request_id}", {"decision": "maybe"}).status_code == 422
    assert "Claimed App" not in alice.page("/pending").text
    for action in ("approve", "deny"):
        assert alice.post(f"/pending/{request_id}/{action}").status_code == 404
    with vault.session() as session:
        row = session.get(AuthorizationRequest, request_id)
        assert row is not None and row.status == "pending"
    with vault.session() as session:
        alice_id = session.exec(select(Account.id).where(Account.username == "alice")).one()
    assert bob.page("/admin").status_code == 403
    assert "Admin" not in bob.page("/").text.split("</nav>")[0]
    refused = [
        bob.post("/admin/accounts", {"username": "mallory", "password": "long enough pw"}),
        bob.post(f"/admin/accounts/{alice_id}/disable"),
        bob.post(f"/admin/accounts/{alice_id}/password", {"password": "taken over!!"}),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    with vault.session() as session:
        assert session.exec(select(Account).where(Account.username == "mallory")).first() is None
        alice_row = session.get(Account, alice_id)
        assert alice_row is not None and not alice_row.disabled
    with Visitor(alice.base_url, "alice", alice.password) as again:
        again.sign_in()  # her password still works
