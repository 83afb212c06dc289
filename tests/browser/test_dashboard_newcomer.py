"""The dashboard's newcomer fixes in Chromium, with screenshots of Apps, Keys and Activity:
a spend total, a spent budget, a key's last use, provider names, the revoke question, a
misfiled key's warning and the styled 404 page."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Page, expect

from okap_server.accounts.service import create_account
from okap_server.context import Vault
from tests.browser.test_person_story import UNNAMED_CONTROLS, reload_until
from tests.support.grants import entry, make_grant

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
HI = [{"role": "user", "content": "hi"}]


def sign_in(page: Page, live_url: str, username: str) -> None:
    page.goto(f"{live_url}/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name="Connected apps")).to_be_visible()


def test_apps_keys_and_activity_as_a_newcomer_sees_them(
    vault: Vault, live_url: str, page: Page, screenshots: Path
) -> None:
    with vault.session() as session:
        create_account(session, "alice", PASSWORD, is_admin=True)
        session.commit()

    def shot(name: str) -> None:
        page.screenshot(path=str(screenshots / f"newcomer-{name}.png"), full_page=True)
        assert page.evaluate(UNNAMED_CONTROLS) == [], f"{name}: controls without a name"

    busy = make_grant(
        vault,
        entry("openai", limits={"monthly_spend": 5.0, "requests_per_day": 100}),
        entry("anthropic", limits={"monthly_spend": 5.0}),
        username="alice",
        client_name="Research-Assistant-Notebook-Summariser",
    )
    spent = make_grant(
        vault, entry("openai", limits={"requests_per_day": 1}), username="alice", client_name="Tiny"
    )
    for issued in (busy, spent):
        app = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=issued.token, max_retries=0)
        app.chat.completions.create(model="gpt-4o-mini", messages=HI)

    sign_in(page, live_url, "alice")
    reload_until(page, f"{live_url}/", "2 requests this month")
    expect(page.locator(".spend-total")).to_contain_text("spent this month by all your apps")
    tiny = page.locator("article.app-card", has_text="Tiny")
    expect(tiny.get_by_role("status")).to_have_text(
        "Refusing requests: daily request limit reached"
    )
    busy_card = page.locator("article.app-card", has_text="Research-Assistant")
    expect(busy_card.locator(".refusing")).to_have_count(0)
    shot("apps")

    # Revoke asks first, on its own page.
    busy_card.get_by_role("link", name=re.compile("^Revoke")).click()
    expect(page.get_by_role("heading", name=re.compile("^Revoke Research"))).to_be_visible()
    shot("revoke-question")
    page.get_by_role("link", name="Keep it").click()
    expect(
        page.get_by_role("heading", name="Research-Assistant-Notebook-Summariser")
    ).to_be_visible()

    # Keys: last used from real use; a key pasted under the wrong provider is questioned.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    openai_key = page.locator(".key-item", has_text="OpenAI")
    expect(openai_key).to_contain_text("last used just now")
    expect(page.locator(".key-item", has_text="Anthropic")).to_contain_text("last used never")
    page.get_by_label("Provider", exact=True).select_option("openai")
    page.get_by_label("API key", exact=True).fill("sk-ant-api03-browser0123456789")
    page.get_by_label("Label", exact=True).fill("pasted")
    page.get_by_role("button", name="Add key").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "This looks like an Anthropic key (it starts with sk-ant-), not an OpenAI key."
    )
    expect(
        page.get_by_label("I checked: store it under the provider chosen above anyway")
    ).to_be_visible()
    shot("keys")

    # Activity: providers by name; the App column keeps whole words.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Activity").click()
    table = page.locator("table.activity")
    expect(table).to_contain_text("OpenAI · gpt-4o-mini")
    cell = table.locator("td.app-name", has_text="Research-Assistant").first
    # One line per hyphen-joined part at most: never a break inside a word.
    words = cell.evaluate(
        """el => {
          const r = document.createRange(); r.selectNodeContents(el);
          return [...r.getClientRects()].length;
        }"""
    )
    assert words <= 4, words
    box = cell.bounding_box()
    assert box is not None and box["width"] >= 120, box
    shot("activity")

    # An unknown address is a page of the vault, not JSON.
    page.goto(f"{live_url}/no-such-page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    shot("404")
