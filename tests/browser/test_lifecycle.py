"""Issue 19's lifecycle levers in Chromium, with screenshots: Regenerate token on the app's
page (the new token shown once, the old one refused), Replace secret on the keys page (the
app keeps working and the upstream gets the new key), and Remove key moving the apps that
use it to another key first."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Page, expect

from okap_server.accounts.service import create_account
from okap_server.context import Vault
from tests.browser.test_person_story import UNNAMED_CONTROLS
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
NEW_SECRET = "sk-proj-BROWSERROTATEDkey0123456789abcdXYZ"
SPARE = "sk-proj-BROWSERSPAREkey0123456789abcdefXYZ"
HI = [{"role": "user", "content": "hi"}]


def chat(live_url: str, token: str) -> str | None:
    client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    return answer.choices[0].message.content


def test_regenerate_a_token_replace_a_key_and_move_apps_off_a_key(
    vault: Vault,
    live_url: str,
    page_url: str,
    page: Page,
    screenshots: Path,
    fake_upstream: FakeUpstream,
) -> None:
    with vault.session() as session:
        create_account(session, "alice", PASSWORD, is_admin=True)
        session.commit()
    issued = make_grant(vault, entry("openai"), username="alice", client_name="Notes Summariser")
    assert chat(live_url, issued.token)

    def shot(name: str) -> None:
        page.screenshot(path=str(screenshots / f"lifecycle-{name}.png"), full_page=True)
        assert page.evaluate(UNNAMED_CONTROLS) == [], f"{name}: controls without a name"

    page.goto(f"{page_url}/signin")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name="Connected apps")).to_be_visible()

    # Regenerate token: a question first, then the new token once.
    page.goto(f"{page_url}/apps/{issued.grant_id}")
    page.get_by_role("link", name="Regenerate token of Notes Summariser").click()
    expect(page.get_by_role("heading", name=re.compile("^Regenerate the token of"))).to_be_visible()
    shot("regenerate-question")
    page.get_by_role("button", name="Regenerate token").click()
    expect(page.get_by_role("status")).to_have_text(
        "Token regenerated. The old token no longer works."
    )
    new_token = page.get_by_label("New token").input_value()
    assert new_token.startswith("okap_") and new_token != issued.token
    shot("regenerate-shown-once")
    with pytest.raises(openai.AuthenticationError):
        chat(live_url, issued.token)
    assert chat(live_url, new_token) == "Hello from the fake upstream."
    page.get_by_role("link", name="Done").click()
    expect(page.get_by_role("heading", name="Notes Summariser", exact=True)).to_be_visible()
    assert new_token not in page.content()

    # Replace secret: the app keeps working, the upstream gets the new key.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    page.get_by_role("link", name="Replace secret of OpenAI key test key").click()
    expect(page.get_by_text("1 connected app uses this key")).to_be_visible()
    page.get_by_label("New API key").fill(NEW_SECRET)
    shot("replace-secret")
    page.get_by_role("button", name="Replace key").click()
    expect(page.get_by_role("status")).to_contain_text("Key replaced in place.")
    expect(page.locator(".key-item", has_text="test key")).to_contain_text("sk-...dXYZ")
    shot("replace-secret-done")
    assert chat(live_url, new_token) == "Hello from the fake upstream."
    sent = fake_upstream.requests_for("openai")[-1].headers["authorization"]
    assert sent == f"Bearer {NEW_SECRET}"

    # Remove the key, moving its app to a spare key first.
    page.get_by_label("Provider", exact=True).select_option("openai")
    page.get_by_label("API key", exact=True).fill(SPARE)
    page.get_by_label("Label").fill("spare")
    page.get_by_role("button", name="Add key").click()
    page.get_by_role("link", name="Remove OpenAI key test key").click()
    expect(page.get_by_role("alert")).to_contain_text("Move them to another OpenAI key first")
    expect(page.get_by_label(re.compile("Move them to “spare”"))).to_be_checked()
    shot("remove-move")
    page.get_by_role("button", name="Remove key").click()
    expect(page.get_by_role("status")).to_contain_text("now use the key you chose")
    expect(page.locator(".key-item", has_text="spare")).to_contain_text("Used by: Notes Summariser")
    shot("remove-moved")
    assert chat(live_url, new_token) == "Hello from the fake upstream."
    sent = fake_upstream.requests_for("openai")[-1].headers["authorization"]
    assert sent == f"Bearer {SPARE}"
