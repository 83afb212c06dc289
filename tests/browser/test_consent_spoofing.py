"""The consent page of a look-alike app, in Chromium: a Cyrillic ``а`` in ``аpple.com`` is
shown beside its punycode, ``xn--pple-43d.com``, which is what the browser will visit."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from okap_server.accounts.service import create_account
from okap_server.context import Vault

pytestmark = pytest.mark.browser

LOOK_ALIKE = "\u0430pple.com"  # Cyrillic small a
ENTRY = {"type": "ai_model_access", "provider": "openai"}


def test_a_look_alike_host_is_shown_with_its_punycode(
    vault: Vault, live_url: str, page: Page, screenshots: Path
) -> None:
    with vault.session() as session:
        create_account(session, "alice", "correct horse battery", is_admin=True)
        session.commit()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    asked = httpx.post(
        f"{live_url}/oauth/par",
        data={
            "client_id": f"https://{LOOK_ALIKE}",
            "client_name": "Apple Intelligence",
            "redirect_uri": f"https://{LOOK_ALIKE}/callback",
            "response_type": "code",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "authorization_details": json.dumps([ENTRY]),
        },
    )
    assert asked.status_code == 201, asked.text
    request_uri = asked.json()["request_uri"]
    page.goto(
        f"{live_url}/oauth/authorize?client_id=https://{LOOK_ALIKE}&request_uri={request_uri}"
    )
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text(LOOK_ALIKE)
    expect(facts.locator("code.ascii-host")).to_have_text("xn--pple-43d.com")
    expect(facts).to_contain_text("(xn--pple-43d.com in plain letters)")
    expect(page.get_by_role("alert")).to_contain_text("letters from other alphabets")
    page.screenshot(path=str(screenshots / "consent-idn-host.png"), full_page=True)
