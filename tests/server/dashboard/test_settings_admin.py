"""Settings (default limits, auto-open, password) and the admin's accounts page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import select

from okap_server.accounts.models import Account, WebSession
from okap_server.authorization.defaults import default_limits_for
from okap_server.context import Vault
from okap_server.grants.models import Grant
from tests.server.dashboard.conftest import PASSWORD, Visitor
from tests.support.grants import entry, make_grant
from tests.support.person import PersonError


@pytest.fixture
def backend() -> str:
    return "sqlite"


def _account(vault: Vault, username: str) -> Account:
    with vault.session() as session:
        return session.exec(select(Account).where(Account.username == username)).one()


def test_default_limits_and_auto_open_are_saved_per_account(
    vault: Vault, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    page = alice.page("/settings").text
    assert 'value="5"' in page and 'value="1000"' in page  # the vault's defaults, shown plainly
    saved = alice.post(
        "/settings/preferences",
        {
            "monthly_spend": "2.5",
            "daily_spend": "",
            "requests_per_minute": "10",
            "requests_per_day": "200",
            "auto_open": "1",
        },
    )
    assert saved.status_code == 303
    account = _account(vault, "alice")
    with vault.session() as session:
        limits = default_limits_for(session, account.id, vault.settings)
    assert limits.monthly_spend == 2.5 and limits.daily_spend is None
    assert limits.requests_per_day == 200
    assert alice.page("/pending/status").json()["auto_open"] is True
    assert "checked" in alice.page("/settings").text.split('name="auto_open"')[1][:40]
    refused = alice.post("/settings/preferences", {"monthly_spend": "lots"})
    assert refused.status_code == 422 and "Monthly spend (USD): must be a number" in refused.text
    none_at_all = alice.post("/settings/preferences", {})
    assert none_at_all.status_code == 422 and "Set at least one default limit" in none_at_all.text
    with vault.session() as session:
        other = default_limits_for(session, None, vault.settings)
    assert other == vault.settings.default_limits


def test_change_password_signs_out_other_browsers(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    elsewhere = Visitor(live_url, "alice", PASSWORD)
    elsewhere.sign_in()
    wrong = alice.post(
        "/settings/password",
        {
            "current_password": "nope",
            "new_password": "a new password",
            "confirm_password": "a new password",
        },
    )
    assert wrong.status_code == 422 and "not your current password" in wrong.text
    changed = alice.post(
        "/settings/password",
        {
            "current_password": PASSWORD,
            "new_password": "a new password",
            "confirm_password": "a new password",
        },
    )
    assert changed.status_code == 303
    assert alice.client.get("/settings").status_code == 200  # this browser stays signed in
    assert elsewhere.client.get("/settings").status_code == 303  # the other one is out
    with pytest.raises(PersonError):
        Visitor(live_url, "alice", PASSWORD).sign_in()
    Visitor(live_url, "alice", "a new password").sign_in()
    elsewhere.close()


def test_admin_adds_disables_and_resets_accounts(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    admin = people("root", admin=True)
    assert (
        admin.post(
            "/admin/accounts", {"username": "carol", "password": "carol's password"}
        ).status_code
        == 303
    )
    assert "carol" in admin.page("/admin").text
    carol = Visitor(live_url, "carol", "carol's password")
    carol.sign_in()
    issued = make_grant(vault, entry("openai"), username="carol")
    carol_id = _account(vault, "carol").id

    assert admin.post(f"/admin/accounts/{carol_id}/disable").status_code == 303
    assert carol.client.get("/").status_code == 303  # signed out
    with pytest.raises(PersonError):
        Visitor(live_url, "carol", "carol's password").sign_in()
    with vault.session() as session:
        grant = session.get(Grant, issued.grant_id)
        assert grant is not None and grant.revoked_at is not None
        assert (
            session.exec(select(WebSession).where(WebSession.account_id == carol_id)).first()
            is None
        )
    assert "member, disabled" in admin.page("/admin").text

    assert admin.post(f"/admin/accounts/{carol_id}/enable").status_code == 303
    assert (
        admin.post(
            f"/admin/accounts/{carol_id}/password", {"password": "brand new pass"}
        ).status_code
        == 303
    )
    Visitor(live_url, "carol", "brand new pass").sign_in()
    carol.close()

    short = admin.post(f"/admin/accounts/{carol_id}/password", {"password": "short"})
    assert short.status_code == 422 and "at least 8 characters" in short.text
    dup = admin.post("/admin/accounts", {"username": "carol", "password": "long enough"})
    assert dup.status_code == 422 and "already exists" in dup.text
    me = _account(vault, "root").id
    itself = admin.post(f"/admin/accounts/{me}/disable")
    assert itself.status_code == 422 and "your own account" in itself.text
    assert admin.post("/admin/accounts/acc_nobody/disable").status_code == 404
