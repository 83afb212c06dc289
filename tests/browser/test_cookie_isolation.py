"""Issue 15, critical: no local app gets the person's session, in a real Chromium.

Cookies are not isolated by port (RFC 6265 §8.5). An app's loopback redirect target
(``http://127.0.0.1:PORT``, RFC 8252 §7.3) and a page any local program serves on another
port are on the same host as a vault whose pages live on ``127.0.0.1``. Here a real loopback
listener plays the app's redirect target and a real page on another port plays the attacker.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Page

from okap_server.accounts.service import create_account, find_account
from okap_server.context import Vault
from okap_server.settings import Settings

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
MALLORY = ("mallory", "mallory's own long password")


class LoopbackServer:
    """A tiny HTTP server on 127.0.0.1 and a port the OS picks, recording every request's
    path and headers; it answers ``body(path)`` as HTML."""

    def __init__(self, body: Any = None) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.pages: dict[str, str] = {}
        seen, pages = self.requests, self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                page = pages.get(urlsplit(self.path).path, "<p>You can close this tab.</p>")
                data = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    yield server
    server.close()


@pytest.fixture(params=["127.0.0.1", "localhost"])
def public_host(request: pytest.FixtureRequest) -> str:
    """The operator's OKAP_PUBLIC_URL host: the IP literal (the default, and the tests'
    usual setting) or ``localhost``."""
    return str(request.param)


@pytest.fixture
def settings(settings: Settings, public_host: str) -> Settings:
    return settings.model_copy(update={"public_url": f"http://{public_host}:{settings.port}"})


@pytest.fixture
def alice(vault: Vault) -> tuple[str, str]:
    with vault.session() as session:
        account = create_account(session, "alice", PASSWORD, is_admin=True)
        vault.keys.add(
            session,
            account_id=account.id,
            provider="openai",
            label="personal",
            secret="sk-proj-COOKIEtest0123456789abcdefXYZ",
        )
        create_account(session, *MALLORY)
        session.commit()
    return "alice", PASSWORD


def sign_in_if_asked(page: Page, username: str, password: str) -> None:
    if urlsplit(page.url).path == "/signin":
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()


def authorize_url(issuer: str, redirect_uri: str) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "client_id": "https://notes.example",
        "client_name": "Notes",
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "state": "s-1",
        "authorization_details": json.dumps(
            [{"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}]
        ),
    }
    return f"{issuer}/oauth/authorize?{urlencode(params)}"


def whoami(page: Page, url: str) -> str | None:
    """Who this browser is signed in as at ``url`` (None: nobody)."""
    page.goto(f"{url}/settings")
    found = page.locator(".whoami")
    return found.inner_text().strip() if found.count() else None


def test_the_apps_loopback_listener_never_receives_a_vault_cookie(
    vault: Vault,
    live_url: str,
    alice: tuple[str, str],
    loopback: LoopbackServer,
    page: Page,
    screenshots: Path,
    public_host: str,
) -> None:
    # The person opens the vault at the address it listens on, as `serve` prints it.
    page.goto(f"{live_url}/")
    sign_in_if_asked(page, *alice)
    # An app runs the code flow with an RFC 8252 loopback redirect; the person approves.
    redirect_uri = f"http://127.0.0.1:{loopback.port}/callback"
    page.goto(authorize_url(vault.settings.effective_public_url, redirect_uri))
    sign_in_if_asked(page, *alice)
    assert "/consent/" in page.url, page.url
    page.screenshot(path=str(screenshots / f"cookie-isolation-consent-{public_host}.png"))
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"http://127.0.0.1:{loopback.port}/callback?*")
    assert any(path.startswith("/callback?code=") for path, _ in loopback.requests)
    for path, headers in loopback.requests:  # the callback, and the browser's favicon fetch
        assert "okap" not in headers.get("cookie", ""), (path, headers.get("cookie"))
    # No vault cookie exists for the IP literal at all: only the pages' host has them.
    assert urlsplit(page.url).hostname == "127.0.0.1"
    hosts = {c["domain"] for c in page.context.cookies() if "okap" in c["name"]}
    assert hosts == {"localhost"}, page.context.cookies()


def attack_page(target: str, nonce: str, form_value: str) -> str:
    """A page on another port: plants a pre-session cookie for its host (which the vault
    shares, ports aside) and posts the vault's sign-in form with Mallory's password."""
    return f"""<!doctype html><title>Free stickers</title>
<form id="f" method="post" action="{target}/signin">
  <input name="username" value="{MALLORY[0]}"><input name="password" value="{MALLORY[1]}">
  <input name="csrf_token" value="{form_value}"><input name="next" value="/settings">
</form>
<script>
  document.cookie = "okap_presession={nonce}; path=/";
  document.getElementById("f").submit();
</script>"""


def genuine_pair(vault_url: str) -> tuple[str, str]:
    """What an attacker's server gets by asking the vault itself for a sign-in form."""
    with httpx.Client(follow_redirects=True) as client:
        page = client.get(f"{vault_url}/signin")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text
        return client.cookies["okap_presession"], found.group(1)


@pytest.mark.parametrize("public_host", ["127.0.0.1"], indirect=True)
def test_a_page_on_another_port_cannot_sign_the_person_in_as_someone_else(
    vault: Vault,
    live_url: str,
    alice: tuple[str, str],
    loopback: LoopbackServer,
    page: Page,
    screenshots: Path,
) -> None:
    page.goto(f"{live_url}/")
    sign_in_if_asked(page, *alice)
    page_url = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))  # where the pages are
    assert whoami(page, live_url) == "alice"
    # An hour on, the sign-in form's own pre-session cookie has expired; the session has not.
    kept = [c for c in page.context.cookies() if c["name"].endswith("okap_session")]
    page.context.clear_cookies()
    page.context.add_cookies(kept)  # type: ignore[arg-type]
    assert whoami(page, page_url) == "alice"
    port = urlsplit(live_url).port
    for attacker_host in ("127.0.0.1", "localhost"):
        target = f"http://{attacker_host}:{port}"  # the vault, as seen from the attacker's host
        for planted in (("planted-nonce-0123456789", "planted-nonce-0123456789"), None):
            nonce, form_value = planted or genuine_pair(target)
            name = f"/attack-{attacker_host}-{'genuine' if planted is None else 'planted'}"
            loopback.pages[name] = attack_page(target, nonce, form_value)
            page.goto(f"http://{attacker_host}:{loopback.port}{name}")
            page.wait_for_url(f"{target}/**")
            page.wait_for_load_state()
            page.screenshot(path=str(screenshots / f"login-csrf-{name.strip('/')}.png"))
            for vault_url in (live_url, page_url):
                signed_in_as = whoami(page, vault_url)
                assert signed_in_as == "alice", (name, vault_url, signed_in_as)
    with vault.session() as session:
        mallory = find_account(session, MALLORY[0])
        assert mallory is not None
