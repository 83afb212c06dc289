"""Issue 16, in Chromium: the consent page says, before approval, which requested models no
price lists; with a fallback price the person approves them at the price shown, and the
app's calls are charged at it."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import openai
import pytest
from playwright.sync_api import Page, expect

from okap_server.accounts.service import create_account
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.server.proxy.records import wait_for_logs
from tests.support.grants import ensure_key

pytestmark = pytest.mark.browser

APP = "https://notes.example"
CALLBACK = f"{APP}/callback"
MODELS = ["gpt-5.2", "my-finetune"]


@pytest.fixture
def fallback() -> float | None:
    """The vault's fallback price (USD per million tokens); a test parametrizes it."""
    return None


@pytest.fixture
def settings(settings: Settings, fallback: float | None) -> Settings:
    return settings.model_copy(update={"fallback_price_per_million": fallback})


def ask(vault: Vault, live_url: str, page: Page) -> str:
    """Alice (with an OpenAI key) signs in to the consent page of a request that names a
    listed model and an unlisted one, under the default spend limits. The PKCE verifier."""
    with vault.session() as session:
        account = create_account(session, "alice", "correct horse battery", is_admin=True)
        session.commit()
    ensure_key(vault, account.id, "openai")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    entry = {"type": "ai_model_access", "provider": "openai", "models": MODELS}
    pushed = httpx.post(
        f"{live_url}/oauth/par",
        data={
            "client_id": APP,
            "client_name": "Notes",
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "authorization_details": json.dumps([entry]),
        },
    )
    assert pushed.status_code == 201, pushed.text
    query = urlencode({"client_id": APP, "request_uri": pushed.json()["request_uri"]})
    page.goto(f"{live_url}/oauth/authorize?{query}")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    return verifier


def test_an_unpriced_model_is_named_before_approval(
    vault: Vault, live_url: str, page: Page, screenshots: Path
) -> None:
    ask(vault, live_url, page)
    warning = page.locator("#unpriced-models")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("No price is listed for this model")
    expect(warning.locator("li")).to_have_text(["my-finetune (OpenAI)"])
    expect(warning).to_contain_text("under a spend limit calls to it are refused")
    expect(warning).to_contain_text("OKAP_FALLBACK_PRICE_PER_MILLION")
    expect(warning).not_to_contain_text("gpt-5.2")
    page.screenshot(path=str(screenshots / "consent-unpriced-model.png"), full_page=True)


@pytest.mark.parametrize("fallback", [7.0])
def test_approved_at_the_fallback_price_shown(
    vault: Vault, live_url: str, page: Page, screenshots: Path, fallback: float
) -> None:
    verifier = ask(vault, live_url, page)
    warning = page.locator("#unpriced-models")
    expect(warning.locator(".fallback-price")).to_have_text("$7/input MTok, $7/output MTok")
    page.screenshot(path=str(screenshots / "consent-unpriced-fallback.png"), full_page=True)
    callbacks: list[str] = []

    def back_in_the_app(route: Any) -> None:
        callbacks.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Back in Notes</h1>")

    page.route(CALLBACK + "**", back_in_the_app)
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", name="Back in Notes")).to_be_visible()
    issued = httpx.post(
        f"{live_url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": parse_qs(urlsplit(callbacks[0]).query)["code"][0],
            "redirect_uri": CALLBACK,
            "client_id": APP,
            "code_verifier": verifier,
        },
    )
    assert issued.status_code == 200, issued.text
    app = openai.OpenAI(
        base_url=f"{live_url}/v1/openai", api_key=issued.json()["access_token"], max_retries=0
    )
    app.chat.completions.create(model="my-finetune", messages=[{"role": "user", "content": "hi"}])
    (log,) = wait_for_logs(vault, 1)
    assert log.cost_micros == (12 + 5) * 7  # the fake's usage at $7 per million tokens
