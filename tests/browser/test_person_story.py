"""One person's whole story in a real browser: set up the vault, sign in, add a key,
approve an app on the consent page, watch its usage, revoke it, and see the app refused.

The app side is real too: PAR and the token endpoint over HTTP, and the ``openai`` SDK
through the vault's proxy to the fake upstream.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import openai
import pytest
from playwright.sync_api import Page, expect

from okap_server.accounts.setup import issue_setup_token
from okap_server.context import Vault
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import free_port

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
SECRET = "sk-proj-REALKEYbrowser0123456789abcdefXYZ"


# Form controls and buttons a screen reader could not name (no label, no text).
UNNAMED_CONTROLS = """() => [...document.querySelectorAll(
    'input:not([type=hidden]):not([hidden]), select, textarea, button, a[href]')]
  .filter(el => {
    const label = el.labels && el.labels.length ? el.labels[0].textContent : '';
    const name = label || el.getAttribute('aria-label') || el.textContent || el.title;
    return !name || !name.trim();
  })
  .map(el => el.outerHTML.slice(0, 120))"""


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def reload_until(page: Page, url: str, text: str, timeout: float = 10.0) -> None:
    """Reload a page until it shows ``text`` (usage is written just after the response)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if text in page.inner_text("main"):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never showed {text!r}:\n{page.inner_text('main')}")
        time.sleep(0.1)


def test_a_persons_whole_story(
    vault: Vault, live_url: str, page: Page, screenshots: Path, fake_upstream: FakeUpstream
) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    def shot(name: str) -> None:
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
        assert page.evaluate(UNNAMED_CONTROLS) == [], f"{name}: controls without a name"

    # 1. Set up the vault through its one-time setup link.
    with vault.session() as session:
        token = issue_setup_token(session, 3600)
    assert token is not None
    page.goto(f"{live_url}/setup?token={token}")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create owner account").click()

    # 2. Sign in (by keyboard: type, then Enter).
    expect(page).to_have_url(re.compile(r"/signin"))
    expect(page.get_by_role("heading", name="Sign in to your vault")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Your account alice was created.")
    expect(page.get_by_label("Username")).to_have_value("alice")
    expect(page.get_by_label("Password")).to_be_focused()
    shot("01-signin")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name="Connected apps")).to_be_visible()
    expect(page.get_by_role("heading", name="No app is connected yet")).to_be_visible()
    shot("02-apps-empty")

    # 3. Add a key: the secret is never echoed back, only its hint.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    page.get_by_label("Provider", exact=True).select_option("openai")
    page.get_by_label("API key", exact=True).fill(SECRET)
    page.get_by_label("Label", exact=True).fill("personal")
    page.get_by_role("button", name="Add key").click()
    expect(page.get_by_role("status")).to_contain_text("Key stored")
    expect(page.locator(".key-item")).to_contain_text("sk-...fXYZ")
    assert SECRET not in page.content()
    page.get_by_role("button", name="Test OpenAI key personal").click()
    expect(page.get_by_role("status")).to_contain_text("personal works")
    probe = fake_upstream.requests_for("openai")[-1]
    assert probe.path.endswith("/models") and probe.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in page.content()
    shot("03-keys")

    # 4. An app asks (PAR), the person approves on the consent page.
    verifier, challenge = pkce_pair()
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    details = [
        {
            "type": "ai_model_access",
            "provider": "openai",
            "models": ["gpt-4o-mini"],
            "capabilities": ["chat"],
            "limits": {"monthly_spend": 10, "daily_spend": 2, "requests_per_day": 100},
            "reason": "Summarise my notes",
        }
    ]
    pushed = httpx.post(
        f"{live_url}/oauth/par",
        data={
            "client_id": "https://notes.example",
            "client_name": "Notes Summariser",
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "s1",
            "authorization_details": json.dumps(details),
        },
    )
    assert pushed.status_code == 201, pushed.text
    callbacks: list[str] = []

    def back_in_the_app(route: Any) -> None:
        callbacks.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Back in Notes</h1>")

    page.route(redirect_uri + "**", back_in_the_app)
    query = urlencode(
        {"client_id": "https://notes.example", "request_uri": pushed.json()["request_uri"]}
    )
    page.goto(f"{live_url}/oauth/authorize?{query}")
    expect(page.get_by_role("heading", name=re.compile("Allow Notes Summariser"))).to_be_visible()
    shot("04-consent")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", name="Back in Notes")).to_be_visible()
    code = parse_qs(urlsplit(callbacks[0]).query)["code"][0]
    issued = httpx.post(
        f"{live_url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": "https://notes.example",
            "code_verifier": verifier,
        },
    )
    assert issued.status_code == 200, issued.text
    app_token = issued.json()["access_token"]

    # 5. The app calls OpenAI through the vault; its card shows the usage.
    app = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=app_token, max_retries=0)
    reply = app.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Summarise: hello"}]
    )
    assert reply.choices[0].message.content
    assert fake_upstream.requests_for("openai")[-1].headers["authorization"] == f"Bearer {SECRET}"
    reload_until(page, f"{live_url}/", "1 of 100 requests today")
    reload_until(page, f"{live_url}/", "just now")  # last used, written with the audit
    card = page.locator("article.app-card", has_text="Notes Summariser")
    expect(card).to_contain_text("https://notes.example")
    expect(card).to_contain_text("127.0.0.1")
    expect(card).to_contain_text("gpt-4o-mini")
    expect(card).to_contain_text(
        re.compile(r"\$0\.00 of \$10\.00 this month|<\$0\.01 of \$10\.00 this month")
    )
    expect(card).to_contain_text(re.compile(r"of \$2\.00 today"))
    expect(card).to_contain_text("expires in")
    shot("05-apps")
    page.set_viewport_size({"width": 390, "height": 844})
    shot("05b-apps-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    card.get_by_role("link", name="Details of Notes Summariser").click()
    expect(page.get_by_role("heading", name="Notes Summariser", exact=True)).to_be_visible()
    expect(
        page.get_by_role(
            "img", name=re.compile("Requests per day over the last 30 days, 1 request in all")
        )
    ).to_be_visible()
    expect(page.locator("table").first).to_contain_text("gpt-4o-mini")
    shot("06-app-detail")
    page.get_by_role("link", name="Edit limits").click()
    expect(page.get_by_label("Requests per day")).to_have_value("100")
    shot("06b-edit-limits")
    page.get_by_role("link", name="Cancel").click()

    # Removing the key warns that this app depends on it (not confirmed here).
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    expect(page.locator(".key-item")).to_contain_text("Used by: Notes Summariser")
    page.get_by_role("link", name="Remove OpenAI key personal").click()
    expect(page.get_by_role("alert")).to_contain_text("1 connected app depends on this key")
    expect(page.get_by_role("alert")).to_contain_text("Notes Summariser")
    shot("06c-key-remove")
    page.get_by_role("link", name="Keep it").click()

    # A second app asks through the OKAP endpoint; it appears in Pending without a reload.
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name=re.compile("Pending")
    ).click()
    expect(page.get_by_text("No app is waiting for your approval")).to_be_visible()
    asked = httpx.post(
        f"{live_url}/okap/authorize",
        json={
            "okap": "1.0",
            "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
            "client": {"name": "Shell Helper", "url": "https://shell.example"},
        },
        timeout=10,
    ).json()
    assert asked["status"] == "pending", asked
    item = page.locator(".pending-item", has_text="Shell Helper")
    expect(item).to_be_visible()
    expect(page.locator("#pending-count")).to_have_text("1")
    shot("07-pending")
    item.get_by_role("button", name="Deny Shell Helper").click()
    expect(page.get_by_role("status")).to_contain_text("Denied")
    assert httpx.get(asked["poll_url"]).json()["status"] == "denied"

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Activity").click()
    rows = page.locator("table.activity")
    expect(rows).to_contain_text("gpt-4o-mini")
    expect(rows).to_contain_text("Access approved")
    expect(rows).to_contain_text("Key added")
    shot("08-activity")
    exported = page.request.get(f"{live_url}/activity.csv")
    assert exported.ok and "gpt-4o-mini" in exported.text() and SECRET not in exported.text()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Default limits")).to_be_visible()
    shot("09-settings")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Accounts")).to_be_visible()
    shot("10-admin")

    # 6. Revoke by keyboard: Tab to the card's Revoke, Enter, then confirm on its page.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Apps").click()
    revoke = page.get_by_role("link", name="Revoke Notes Summariser")
    for _ in range(40):
        page.keyboard.press("Tab")
        if revoke.evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError("the Revoke button cannot be reached with the keyboard")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Revoke Notes Summariser?")).to_be_visible()
    shot("11a-revoke-question")
    page.get_by_role("button", name="Revoke access").press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Access revoked")
    expect(page.locator("article.app-card", has_text="Notes Summariser")).to_have_count(0)
    shot("11-apps-after-revoke")

    # 7. The app's next call is refused, as its SDK expects.
    with pytest.raises(openai.AuthenticationError):
        app.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}]
        )
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_sign_out_and_auto_open_consent(
    vault: Vault, live_url: str, page: Page, screenshots: Path
) -> None:
    """With "open the consent page by itself" on, a new request takes the open dashboard
    to its consent page; signing out ends the session on the server."""
    from okap_server.accounts.service import create_account

    with vault.session() as session:
        create_account(session, "bea", PASSWORD)
        session.commit()
    page.goto(f"{live_url}/settings")
    page.get_by_label("Username").fill("bea")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label(re.compile("Open the consent page by itself")).check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Settings saved")
    page.goto(f"{live_url}/")
    asked = httpx.post(
        f"{live_url}/okap/authorize",
        json={
            "okap": "1.0",
            "authorization_details": [{"type": "ai_model_access", "provider": "anthropic"}],
            "client": {"name": "Auto Opened"},
        },
    ).json()
    page.wait_for_url(re.compile(r"/consent/req_"))
    expect(page.get_by_role("heading", name=re.compile("Allow Auto Opened"))).to_be_visible()
    assert page.url == asked["consent_url"]

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to your vault")).to_be_visible()
    page.goto(f"{live_url}/keys")
    expect(page).to_have_url(re.compile(r"/signin\?next=/keys"))
