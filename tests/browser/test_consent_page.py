"""The consent page says exactly what will happen, in Chromium: the summary at the top
(total spend the app could reach, expiry), the limits the grant gets before Approve, money
as money, the expiry's source, and an app that already holds the same access.

Screenshots (one provider, three providers, no limits asked) go to the artifacts folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from okap_server.accounts.models import Account
from okap_server.accounts.service import create_account
from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
IN_30_DAYS = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ask(live_url: str, details: list[dict[str, Any]], client: str = "https://notes.example") -> str:
    """Push an app's request (PAR) and return the authorize URL a browser opens."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    pushed = httpx.post(
        f"{live_url}/oauth/par",
        data={
            "client_id": client,
            "client_name": "Notes Summariser",
            "redirect_uri": "http://127.0.0.1:9/callback",
            "response_type": "code",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "authorization_details": json.dumps(details),
        },
    )
    assert pushed.status_code == 201, pushed.text
    uri = pushed.json()["request_uri"]
    return f"{live_url}/oauth/authorize?client_id={client}&request_uri={uri}"


@pytest.fixture
def signed_in(vault: Vault, live_url: str, page: Page) -> Page:
    with vault.session() as session:
        create_account(session, "alice", PASSWORD, is_admin=True)
        session.commit()
    page.goto(f"{live_url}/signin")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Connected apps")).to_be_visible()
    return page


def open_consent(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name=re.compile("Allow Notes Summariser"))).to_be_visible()


def approve_and_read_grant(vault: Vault, page: Page) -> dict[str, Any]:
    """Click Approve (the app's callback answered in the browser) and return what the
    approval grants (the code flow mints the grant itself when the app redeems the code)."""
    page.route("http://127.0.0.1:9/**", lambda route: route.fulfill(body="back in the app"))
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("body")).to_contain_text("back in the app")
    with vault.session() as session:
        approved = session.exec(
            select(AuthorizationRequest).where(AuthorizationRequest.status == "approved")
        ).all()
    assert len(approved) == 1 and approved[0].granted_details
    entry: dict[str, Any] = approved[0].granted_details[0]
    return entry


def test_one_provider(vault: Vault, live_url: str, signed_in: Page, screenshots: Path) -> None:
    page = signed_in
    open_consent(
        page,
        ask(
            live_url,
            [
                {
                    "type": "ai_model_access",
                    "provider": "openai",
                    "models": ["gpt-4o-mini"],
                    "limits": {"monthly_spend": 10, "daily_spend": 2.5},
                    "expires": IN_30_DAYS,
                    "reason": "Summarise my notes",
                }
            ],
        ),
    )
    summary = page.get_by_role("region", name="If you approve as shown")
    expect(summary).to_contain_text("up to $10.00 / month on OpenAI")
    expect(summary).to_contain_text("(as the app asked)")
    expect(page.locator("p.effective")).to_have_text(
        "Limits: $10.00 a month · $2.50 a day · 60 requests a minute · 1,000 requests a day"
    )
    page.screenshot(path=str(screenshots / "consent-one-provider.png"), full_page=True)

    page.get_by_text("Change limits or expiry").click()
    monthly = page.get_by_label("Monthly spend")
    expect(monthly).to_have_value("10.00")
    expect(monthly).to_have_accessible_description("asked: $10.00, can only be lowered")
    expect(page.get_by_label("Daily spend")).to_have_value("2.50")
    expect(page.get_by_label("Requests per minute")).to_have_accessible_description("your default")
    expect(page.get_by_label("Requests per day")).to_have_value("1,000")  # grouped as money is
    expect(page.get_by_label("Total spend")).to_have_accessible_description("no limit")
    expect(page.get_by_label("Access ends (UTC)")).to_have_accessible_description(
        re.compile(r"^asked: \d+ \w{3} \d{4}, \d\d:\d\d UTC; can only be made earlier$")
    )
    # Every label sits on one line, so the inputs of a row line up.
    tops = page.eval_on_selector_all(
        "fieldset.entry .limits input", "els => els.map(e => e.getBoundingClientRect().top)"
    )
    rows = [tops[start : start + 3] for start in range(0, len(tops), 3)]  # three a row
    assert len(tops) == 7 and all(len(set(row)) == 1 for row in rows), tops
    page.screenshot(path=str(screenshots / "consent-one-provider-change.png"), full_page=True)

    page.get_by_label("OpenAI API key").fill("sk-proj-consent0123456789abcdefXYZ")
    granted = approve_and_read_grant(vault, page)
    assert granted["limits"] == {
        "monthly_spend": 10,
        "weekly_spend": None,
        "daily_spend": 2.5,
        "total_spend": None,
        "requests_per_minute": 60,
        "requests_per_day": 1000,
        "tokens_per_request": None,
    }


def test_three_providers(live_url: str, signed_in: Page, screenshots: Path) -> None:
    page = signed_in
    entries = [
        {"type": "ai_model_access", "provider": p, "reason": "Compare answers"}
        for p in ("openai", "anthropic", "google")
    ]
    open_consent(page, ask(live_url, entries))
    summary = page.get_by_role("region", name="If you approve as shown")
    expect(summary).to_contain_text("up to $15.00 / month across 3 providers")
    expect(summary).to_contain_text("the vault's default of 90 days; the app did not ask")
    expect(page.locator("p.reason")).to_have_count(1)  # the same reason is said once
    expect(page.locator("details.change")).to_have_count(3)
    expect(page.get_by_label("Monthly spend").first).not_to_be_visible()  # collapsed
    page.screenshot(path=str(screenshots / "consent-three-providers.png"), full_page=True)

    # What the page says follows what the person changes, before Approve.
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.get_by_role("checkbox", name="Google Gemini").uncheck()
    expect(summary).to_contain_text("up to $10.00 / month across 2 providers")
    page.get_by_text("Change limits, models or expiry").first.click()
    page.get_by_label("Monthly spend").first.fill("")
    page.get_by_label("Daily spend").first.fill("0.5")
    page.get_by_label("Requests per minute").first.fill("1")
    page.get_by_label("Max tokens per request").first.fill("1000")
    expect(page.locator("p.effective").first).to_have_text(
        "Limits: $0.50 a day · 1 request a minute · 1,000 requests a day · "
        "at most 1,000 tokens a request"
    )
    expect(summary).to_contain_text("up to $20.50 / month across 2 providers")  # 31 x $0.50
    page.get_by_label("Daily spend").first.fill("")
    expect(page.locator("p.effective").first).to_contain_text("no spend limit")
    expect(summary).to_contain_text(
        "up to $5.00 / month across 2 providers, plus whatever OpenAI may spend"
    )
    assert errors == []
    page.screenshot(path=str(screenshots / "consent-three-providers-edited.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow, "the consent page scrolls sideways on a phone"
    page.screenshot(path=str(screenshots / "consent-three-providers-phone.png"), full_page=True)


def test_no_limits_asked(vault: Vault, live_url: str, signed_in: Page, screenshots: Path) -> None:
    page = signed_in
    open_consent(page, ask(live_url, [{"type": "ai_model_access", "provider": "openai"}]))
    summary = page.get_by_role("region", name="If you approve as shown")
    expect(summary).to_contain_text("up to $5.00 / month on OpenAI")
    expect(summary).to_contain_text("filled in from your default limits")
    expect(page.locator("main")).not_to_contain_text("asked:")
    expect(page.locator("p.effective-expiry")).to_contain_text("the app did not ask")
    page.screenshot(path=str(screenshots / "consent-no-limits-asked.png"), full_page=True)

    # Clearing every field is what "a cleared field means no limit" promises.
    page.get_by_text("Change limits, models or expiry").click()
    for field in page.locator("fieldset.entry .limits input").all():
        field.fill("")
    page.get_by_label("OpenAI API key").fill("sk-proj-consent0123456789abcdefXYZ")
    granted = approve_and_read_grant(vault, page)
    assert set(granted["limits"].values()) == {None}


def test_one_limit_asked_keeps_the_default_spend_limits(live_url: str, signed_in: Page) -> None:
    page = signed_in
    entry = {"type": "ai_model_access", "provider": "openai", "limits": {"requests_per_day": 500}}
    open_consent(page, ask(live_url, [entry]))
    expect(page.get_by_role("region", name="If you approve as shown")).to_contain_text(
        "up to $5.00 / month on OpenAI"
    )
    expect(page.locator("p.effective")).to_have_text(
        "Limits: $5.00 a month · $1.00 a day · 60 requests a minute · 500 requests a day"
    )


def test_no_spend_limit_is_a_warning(vault: Vault, live_url: str, signed_in: Page) -> None:
    page = signed_in
    with vault.session() as session:
        account = session.exec(select(Account)).one()
        account.preferences = {"default_limits": {"monthly_spend": None, "daily_spend": None}}
        session.add(account)
        session.commit()
    open_consent(page, ask(live_url, [{"type": "ai_model_access", "provider": "openai"}]))
    expect(page.get_by_role("region", name="If you approve as shown")).to_contain_text(
        "no spend limit on OpenAI"
    )
    expect(page.get_by_role("alert")).to_contain_text("No spend limit on OpenAI")
    expect(page.locator("p.effective")).to_contain_text("no spend limit")
