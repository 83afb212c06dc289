"""The "New token" page walked in Chromium: a personal token for OpenAI with a daily spend
limit, used with the real ``openai`` SDK through the vault's proxy (the fake upstream
answers), seen under Apps, revoked there, and refused after. Screenshots: the form, the
token shown once, Apps with it, after revoking."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from playwright.sync_api import Page, expect

from okap_server.accounts.service import create_account
from okap_server.context import Vault
from tests.browser.test_dashboard_newcomer import HI, PASSWORD, sign_in
from tests.browser.test_person_story import UNNAMED_CONTROLS
from tests.support.grants import ensure_key

pytestmark = pytest.mark.browser


def test_create_use_see_and_revoke_a_personal_token(
    vault: Vault, live_url: str, page: Page, screenshots: Path
) -> None:
    with vault.session() as session:
        alice = create_account(session, "alice", PASSWORD)
        session.commit()
        alice_id = alice.id
    ensure_key(vault, alice_id, "openai")

    def shot(name: str) -> None:
        page.screenshot(path=str(screenshots / f"personal-token-{name}.png"), full_page=True)
        assert page.evaluate(UNNAMED_CONTROLS) == [], f"{name}: controls without a name"

    sign_in(page, live_url, "alice")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New token").click()
    expect(page.get_by_role("heading", name="New token", exact=True)).to_be_visible()
    expect(page.get_by_label("Provider")).to_have_value("openai")  # the one with a key
    expect(page.locator("#provider option")).to_have_count(1)
    page.get_by_label("Name").fill("notebook")
    page.get_by_text("Change limits, models or expiry").click()
    page.get_by_label("Daily spend (USD)").fill("0.50")
    # The page's script restates the limits as typed, as on the consent page.
    expect(page.locator(".effective-values")).to_contain_text("$0.50 a day")
    shot("new")
    page.get_by_role("button", name="Create token").click()

    expect(page.get_by_role("heading", name="Token created")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("shown this once")
    token = page.get_by_label("notebook (OpenAI)").input_value()
    assert token.startswith("okap_") and token not in page.url
    base_url = page.get_by_label("Base URL").input_value()
    assert base_url.endswith("/v1/openai")
    snippet = page.locator("#env-snippet").inner_text()
    assert snippet == f"export OPENAI_BASE_URL={base_url} OPENAI_API_KEY={token}"
    shot("created")

    client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    assert answer.choices[0].message.content

    page.get_by_role("link", name="Done").click()
    expect(page.get_by_role("heading", name="Connected apps")).to_be_visible()
    expect(page.get_by_text("notebook").first).to_be_visible()
    assert token not in page.content()
    shot("apps")

    page.get_by_role("link", name="Revoke notebook").click()
    page.get_by_role("button", name="Revoke access").click()
    expect(page.get_by_role("status")).to_contain_text("Access revoked")
    shot("revoked")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
