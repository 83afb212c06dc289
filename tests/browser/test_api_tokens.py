"""The "API tokens" and "New token" pages walked in Chromium: create a token, use it
against /api/v1/grants over real HTTP, see its last use, revoke it, and see it refused.
Screenshots: the empty list, the form, the token shown once, the list, after revoking."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from okap_server.accounts.service import create_account
from okap_server.context import Vault
from tests.browser.test_dashboard_newcomer import PASSWORD, sign_in
from tests.browser.test_person_story import UNNAMED_CONTROLS

pytestmark = pytest.mark.browser


def test_create_use_and_revoke_an_api_token(
    vault: Vault, live_url: str, page: Page, screenshots: Path
) -> None:
    with vault.session() as session:
        create_account(session, "root", PASSWORD, is_admin=True)
        create_account(session, "alice", PASSWORD)
        session.commit()

    def shot(name: str) -> None:
        page.screenshot(path=str(screenshots / f"api-tokens-{name}.png"), full_page=True)
        assert page.evaluate(UNNAMED_CONTROLS) == [], f"{name}: controls without a name"

    sign_in(page, live_url, "alice")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="API tokens", exact=True)).to_be_visible()
    expect(page.get_by_text("No API token yet")).to_be_visible()
    shot("empty")

    page.get_by_role("link", name="New API token").click()
    expect(page.get_by_role("heading", name="New API token")).to_be_visible()
    expect(page.locator("input[name=scope][value=admin]")).to_have_count(0)  # not an admin
    page.get_by_label("Name").fill("nightly report")
    page.get_by_role("checkbox", name="grants:read").check()
    page.get_by_role("checkbox", name="usage:read").check()
    page.get_by_label("Expires").select_option(label="30 days")
    shot("new")
    page.get_by_role("button", name="Create token").click()

    expect(page.get_by_role("heading", name="Token created")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("shown this once")
    token = page.get_by_label("nightly report").input_value()
    assert token.startswith("okapm_")
    shot("created")

    bearer = {"Authorization": f"Bearer {token}"}
    grants = httpx.get(f"{live_url}/api/v1/grants", headers=bearer)
    assert grants.status_code == 200 and grants.json()["data"] == []

    page.get_by_role("link", name="Done").click()
    item = page.locator(".key-item", has_text="nightly report")
    expect(item).to_contain_text("grants:read")
    expect(item).to_contain_text("last used just now")
    expect(item).to_contain_text("expires in")
    assert token not in page.content()  # never shown again
    page.reload()  # nor by reloading
    assert token not in page.content()
    shot("list")

    page.get_by_role("button", name="Revoke token nightly report").click()
    expect(page.get_by_role("status")).to_contain_text("Token revoked")
    expect(page.locator(".key-item", has_text="nightly report")).to_contain_text("revoked")
    expect(page.get_by_role("button", name="Revoke token nightly report")).to_have_count(0)
    shot("revoked")
    assert httpx.get(f"{live_url}/api/v1/grants", headers=bearer).status_code == 401


def test_an_admin_is_offered_the_admin_scope(vault: Vault, live_url: str, page: Page) -> None:
    with vault.session() as session:
        create_account(session, "root", PASSWORD, is_admin=True)
        session.commit()
    sign_in(page, live_url, "root")
    page.goto(f"{live_url}/api-tokens/new")
    page.get_by_label("Name").fill("accounts")
    page.locator('input[name="scope"][value="admin"]').check()
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("accounts").input_value()
    accounts = httpx.get(
        f"{live_url}/api/v1/accounts", headers={"Authorization": f"Bearer {token}"}
    )
    assert accounts.status_code == 200
