"""The browser flow with a real Chromium: sign in, untick a model, Approve, land on the
loopback page that says the tab can be closed."""

from __future__ import annotations

import shutil

import pytest

from okap_client import OkapClient

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def backend() -> str:
    """One back end is enough for the browser path; the flows run on both in test_live_flows."""
    return "sqlite"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_person_approves_in_chromium(live_url, person, owner, cache):
    from playwright.sync_api import sync_playwright

    landed: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(30_000)

        def open_browser(url: str) -> bool:
            page.goto(url)
            page.get_by_label("Username").fill(owner[0])
            page.get_by_label("Password").fill(owner[1])
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("checkbox", name="gpt-4.1").uncheck()
            page.get_by_role("button", name="Approve").click()
            page.wait_for_url("http://127.0.0.1:*/callback?*")
            landed.append(page.inner_text("body"))
            return True

        try:
            with OkapClient(
                live_url, app_name="Browser App", cache=cache, open_browser=open_browser
            ) as client:
                token = client.request_access(provider="openai", models=["gpt-4o-mini", "gpt-4.1"])
        finally:
            browser.close()

    assert "You can close this tab" in landed[0]
    assert token.models == ["gpt-4o-mini"]
