"""The nav's badge counts pending requests on every dashboard page: in the page itself
(without the script too), and kept fresh by the script when another request arrives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from okap_server.accounts.service import create_account
from okap_server.context import Vault
from tests.browser.test_dashboard_newcomer import PASSWORD, sign_in

pytestmark = pytest.mark.browser

PAGES = ["/", "/pending", "/keys", "/activity", "/settings", "/admin"]


def ask(live_url: str, name: str) -> None:
    body = {
        "okap": "1.0",
        "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
        "client": {"name": name},
    }
    answer = httpx.post(f"{live_url}/okap/authorize", json=body, headers={"Prefer": "wait=0"})
    assert answer.json()["status"] == "pending", answer.text


def test_badge_on_every_dashboard_page(
    vault: Vault, live_url: str, page: Page, browser: Any, screenshots: Path
) -> None:
    with vault.session() as session:
        create_account(session, "alice", PASSWORD, is_admin=True)
        session.commit()
    ask(live_url, "Notes")
    ask(live_url, "Shell Helper")

    # Without the script: the count is in the page itself.
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 860}
    )
    quiet = context.new_page()
    quiet.goto(f"{live_url}/signin")
    quiet.get_by_label("Username").fill("alice")
    quiet.get_by_label("Password").fill(PASSWORD)
    quiet.get_by_role("button", name="Sign in").click()
    for path in PAGES:
        quiet.goto(f"{live_url}{path}")
        badge = quiet.get_by_role("navigation", name="Main").locator("#pending-count")
        expect(badge).to_have_text("2")
        expect(badge).to_be_visible()
        expect(badge).to_have_attribute("aria-label", "2 waiting")
    context.close()

    # With it: fresh without a reload when a third request arrives.
    sign_in(page, live_url, "alice")
    badge = page.locator("#pending-count")
    expect(badge).to_have_text("2")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    ask(live_url, "Research Notebook")
    expect(badge).to_have_text("3")
    page.locator("nav.mainnav").screenshot(path=str(screenshots / "pending-badge-nav.png"))
    page.screenshot(path=str(screenshots / "pending-badge-keys.png"), full_page=True)
