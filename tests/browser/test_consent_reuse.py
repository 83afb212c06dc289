"""An app that asks again for access it already holds, in Chromium: the consent page says
so and offers to reuse it; reusing gives the same grant a fresh token (one card, one
budget), and the token given before stops working at the proxy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import select

from okap_server.accounts.service import create_account
from okap_server.context import Vault
from okap_server.grants.models import Grant

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
ASK: dict[str, Any] = {
    "okap": "1.0",
    "authorization_details": [
        {"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}
    ],
    "client": {"name": "Notes", "url": "https://notes.example"},
}


def ask(app: httpx.Client) -> dict[str, Any]:
    pending: dict[str, Any] = app.post(
        "/okap/authorize", json=ASK, headers={"Prefer": "wait=0"}
    ).json()
    assert pending["status"] == "pending", pending
    return pending


def collect(app: httpx.Client, pending: dict[str, Any]) -> str:
    granted = app.get(pending["poll_url"]).json()
    assert granted["status"] == "granted", granted
    token: str = granted["token"]
    return token


def chat(live_url: str, token: str) -> str:
    app = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)
    reply = app.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    return reply.choices[0].message.content or ""


def test_the_same_request_again_offers_the_existing_access(
    vault: Vault, live_url: str, page: Page, screenshots: Path
) -> None:
    with vault.session() as session:
        account = create_account(session, "alice", PASSWORD, is_admin=True)
        session.commit()
        vault.keys.add(
            session,
            account_id=account.id,
            provider="openai",
            label="personal",
            secret="sk-proj-reuse0123456789abcdefXYZ",
        )
        session.commit()
    with httpx.Client(base_url=live_url, timeout=10) as app:
        first = ask(app)
        page.goto(first["consent_url"])
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("already has this access")).to_have_count(0)
        page.get_by_role("button", name="Approve").click()
        expect(page.locator("main")).to_contain_text("approved", ignore_case=True)
        old_token = collect(app, first)
        assert chat(live_url, old_token)

        second = ask(app)
        page.goto(second["consent_url"])
        offer = page.get_by_role("region", name="Notes already has this access")
        expect(offer).to_contain_text("You approved the same access to OpenAI on")
        expect(page.get_by_role("button", name="Approve as separate access")).to_be_visible()
        page.screenshot(path=str(screenshots / "consent-existing-access.png"), full_page=True)
        offer.get_by_role("button", name="Reuse existing access").click()
        expect(page.locator("main")).to_contain_text("approved", ignore_case=True)
        new_token = collect(app, second)

    assert new_token != old_token
    with vault.session() as session:
        assert len(session.exec(select(Grant)).all()) == 1  # no second grant
    assert chat(live_url, new_token)
    with pytest.raises(openai.AuthenticationError):
        chat(live_url, old_token)


def test_the_pending_list_offers_the_existing_access_too(
    vault: Vault, live_url: str, page: Page, screenshots: Path
) -> None:
    """ "Approve as asked" from the list would mint a second grant: the list says the app
    already has this access and offers reuse first, through the consent page's decision."""
    with vault.session() as session:
        account = create_account(session, "alice", PASSWORD, is_admin=True)
        session.commit()
        vault.keys.add(
            session,
            account_id=account.id,
            provider="openai",
            label="personal",
            secret="sk-proj-reuse0123456789abcdefXYZ",
        )
        session.commit()
    page.goto(f"{live_url}/signin")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    with httpx.Client(base_url=live_url, timeout=10) as app:
        first = ask(app)
        page.goto(f"{live_url}/pending")
        expect(page.get_by_text("already has this access")).to_have_count(0)
        page.get_by_role("button", name="Approve as asked for Notes").click()
        expect(page.get_by_role("status")).to_contain_text("Approved")
        old_token = collect(app, first)

        again = ask(app)
        page.goto(f"{live_url}/pending")
        item = page.locator(".pending-item", has_text="Notes")
        expect(item).to_contain_text("Notes already has this access")
        expect(
            item.get_by_role("button", name="Approve as separate access for Notes")
        ).to_be_visible()
        page.screenshot(path=str(screenshots / "pending-reuse-offer.png"), full_page=True)
        item.get_by_role("button", name="Reuse existing access for Notes").click()
        expect(page.get_by_role("status")).to_contain_text("reusing the app's existing access")
        new_token = collect(app, again)

    assert new_token != old_token and chat(live_url, new_token)
    with pytest.raises(openai.AuthenticationError):
        chat(live_url, old_token)
    with vault.session() as session:
        assert len(session.exec(select(Grant)).all()) == 1
