"""Issue 15, critical, over real HTTP: the vault's cookies live on one host, never on the
loopback IP literal an app's redirect uses; page forms are refused from any other origin; a
planted pre-session cookie is useless; redirect URIs on the vault's own host are refused; and
under https every cookie is ``__Host-``. The Chromium side is ``browser/test_cookie_isolation.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from okap_server.accounts.models import WebSession
from okap_server.accounts.service import create_account
from okap_server.accounts.setup import issue_setup_token
from okap_server.app import create_app
from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault, open_vault
from okap_server.settings import Settings
from tests.security.conftest import sqlite_only
from tests.server.authorization.conftest import RedirectListener, authorize_params, pkce_pair
from tests.support.live import free_port, serve_app
from tests.support.person import Person

SIGNIN_FIELDS = re.compile(r'name="csrf_token" value="([^"]+)"')


def signin_form(client: httpx.Client) -> str:
    found = SIGNIN_FIELDS.search(client.get("/signin").text)
    assert found
    return found.group(1)


@sqlite_only
def test_pages_on_the_ip_literal_move_to_the_pages_host(live_url: str, page_url: str) -> None:
    assert page_url.startswith("http://localhost:")  # the public URL is http://127.0.0.1:PORT
    with httpx.Client(base_url=live_url) as browser:
        moved = browser.get("/consent/req_x?a=1&b=%2F")
        assert moved.status_code == 307
        assert moved.headers["location"] == f"{page_url}/consent/req_x?a=1&b=%2F"
        assert "set-cookie" not in moved.headers  # nothing is ever set on the IP literal
        for path in ("/", "/signin", "/setup?token=x", "/keys", "/device"):
            answer = browser.get(path)
            assert answer.status_code == 307, path
            assert "set-cookie" not in answer.headers, path
        refused = browser.post("/signin", data={"username": "a", "password": "b"})
        assert refused.status_code == 403
        assert page_url in refused.text
        assert "set-cookie" not in refused.headers
        # The API answers on every host: apps and SDKs use the IP literal.
        assert browser.get("/.well-known/oauth-authorization-server").status_code == 200
        assert browser.get("/healthz").status_code == 200
        assert browser.post("/oauth/token", data={}).status_code == 400
    port = page_url.rsplit(":", 1)[1]
    for host in (f"LOCALHOST.:{port}", f"[::1]:{port}", f"127.0.0.2:{port}", "127.0.0.1"):
        answer = httpx.get(f"{live_url}/signin", headers={"host": host})  # this machine's names
        assert answer.status_code == 307, host
        assert answer.headers["location"] == f"{page_url}/signin"
    with httpx.Client(base_url=page_url) as browser:
        shown = browser.get("/signin")
        assert shown.status_code == 200 and "okap_presession" in shown.headers["set-cookie"]


@sqlite_only
def test_a_session_cookie_seen_on_the_ip_literal_is_expired_and_revoked(
    live_url: str, page_url: str, person: Person, vault: Vault
) -> None:
    """A cookie an older version set on 127.0.0.1 would go to every loopback redirect target:
    the vault expires it the first time the browser passes there, and ends its session."""
    person.sign_in()
    value = person.client.cookies["okap_session"]
    with vault.session() as session:
        assert len(session.exec(select(WebSession)).all()) == 1
    # Another site on 127.0.0.1 set a cookie Python's SimpleCookie cannot parse (JSON, as
    # many do): it must not shield the vault's stale cookies from expiry.
    jar = f'pref={{"theme":"dark","n":2}}; okap_session={value}; okap_presession=old'
    with httpx.Client(base_url=live_url) as browser:
        verifier, challenge = pkce_pair()
        passing = browser.get(  # the code flow's entry, an API path: answered, cookie expired
            "/oauth/authorize",
            params=authorize_params("http://127.0.0.1:9/cb", challenge),
            headers={"cookie": f"{jar}; okap_device=older"},
        )
        assert passing.status_code == 303
        expired = passing.headers.get_list("set-cookie")
        for name in ("okap_session", "okap_presession", "okap_device"):
            assert any(c.startswith(f"{name}=;") and "Max-Age=0" in c for c in expired), name
    with vault.session() as session:
        assert session.exec(select(WebSession)).all() == []  # the session is over everywhere
    assert httpx.get(f"{page_url}/keys", cookies={"okap_session": value}).status_code == 303


@sqlite_only
def test_page_forms_from_another_origin_are_refused(
    page_url: str, owner: tuple[str, str], live_url: str
) -> None:
    """Sec-Fetch-Site / Origin on every state-changing page request: a page on another port of
    the same host is same-site, so SameSite cookies do not stop it; this does."""
    other = page_url.rsplit(":", 1)[0] + ":9"
    foreign = [
        {"sec-fetch-site": "same-site"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "none"},
        {"origin": other},
        {"origin": "http://127.0.0.1:" + page_url.rsplit(":", 1)[1]},
        {"origin": "https://evil.example"},
    ]
    paths = ["/signin", "/signout", "/device", "/consent/req_x", "/keys", "/setup"]
    with httpx.Client(base_url=page_url) as browser:
        csrf = signin_form(browser)
        form = {"username": owner[0], "password": owner[1], "csrf_token": csrf}
        for headers in foreign:
            for path in paths:
                answer = browser.post(path, data=form, headers=headers)
                assert answer.status_code == 403, (path, headers)
                assert "Security check failed" in answer.text
                assert "set-cookie" not in answer.headers, (path, headers)
        assert "okap_session" not in browser.cookies
        # From the vault's own page (or from no browser at all) the form works.
        for headers in ({"sec-fetch-site": "same-origin", "origin": "null"}, {"origin": page_url}):
            signed_in = browser.post("/signin", data=form, headers=headers)
            assert signed_in.status_code == 303, headers
    # The API is called by apps from anywhere: no such check there.
    answer = httpx.post(
        f"{live_url}/oauth/token", data={}, headers={"sec-fetch-site": "cross-site"}
    )
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


@sqlite_only
def test_a_planted_presession_cookie_is_useless(page_url: str, owner: tuple[str, str]) -> None:
    """Double-submit bound to the vault: the form value is the vault's HMAC of the cookie."""
    creds = {"username": owner[0], "password": owner[1]}
    with httpx.Client(base_url=page_url) as browser:
        browser.cookies.set("okap_presession", "planted-by-another-port")
        answer = browser.post("/signin", data=creds | {"csrf_token": "planted-by-another-port"})
        assert answer.status_code == 403
        assert "okap_session" not in browser.cookies
    with httpx.Client(base_url=page_url) as browser:
        csrf = signin_form(browser)
        assert csrf != browser.cookies["okap_presession"]
        assert browser.post("/signin", data=creds | {"csrf_token": csrf}).status_code == 303


@sqlite_only
def test_redirect_uris_on_the_vaults_own_host_are_refused(
    live_url: str, page_url: str, vault: Vault, listener: RedirectListener
) -> None:
    """Cookies for ``localhost`` go to every port of it: no redirect target may be there
    (http://localhost is refused anyway, RFC 8252 §8.3). Loopback IP literals stay allowed:
    the vault's cookies never live on them."""
    _, challenge = pkce_pair()
    port = page_url.rsplit(":", 1)[1]
    own = [
        "https://localhost:9999/cb",
        "https://LOCALHOST./cb",
        f"https://localhost:{port}/cb",
        "http://localhost:9999/cb",
        "https://xn--pple-43d.com\u200b/cb",  # not a valid internationalised name
    ]
    with httpx.Client(base_url=live_url) as app:
        for uri in own:
            answer = app.get("/oauth/authorize", params=authorize_params(uri, challenge))
            assert answer.status_code == 400, uri  # shown, never redirected
            assert "location" not in answer.headers
            par = app.post("/oauth/par", data=authorize_params(uri, challenge))
            assert par.status_code == 400 and par.json()["error"] == "invalid_request", uri
        ok = app.get("/oauth/authorize", params=authorize_params(listener.redirect_uri, challenge))
        assert ok.status_code == 303 and ok.headers["location"].startswith(f"{page_url}/consent/")
    with vault.session() as session:
        assert len(session.exec(select(AuthorizationRequest)).all()) == 1


@pytest.fixture
def https_vault(settings: Settings) -> Iterator[tuple[Vault, str]]:
    """A team vault: https public URL (TLS ends at its proxy), served here on loopback."""
    opened = open_vault(settings.model_copy(update={"public_url": "https://vault.example"}))
    with opened.session() as session:
        create_account(session, "alice", "correct horse battery")
        session.commit()
    try:
        with serve_app(create_app(opened), free_port()) as url:
            yield opened, url
    finally:
        opened.dispose()


def assert_host_cookie(header: str, name: str) -> str:
    assert header.startswith(f"__Host-{name}="), header
    attributes = [part.strip().lower() for part in header.split(";")[1:]]
    assert "secure" in attributes and "path=/" in attributes and "httponly" in attributes
    assert not any(a.startswith("domain") for a in attributes), header
    return header.split(";")[0].split("=", 1)[1]


@sqlite_only
def test_every_cookie_has_the_host_prefix_under_https(
    https_vault: tuple[Vault, str], tmp_path: Path
) -> None:
    vault, url = https_vault
    with httpx.Client(base_url=url) as browser:
        shown = browser.get("/signin")
        nonce = assert_host_cookie(shown.headers["set-cookie"], "okap_presession")
        csrf = SIGNIN_FIELDS.search(shown.text)
        assert csrf
        signed_in = browser.post(
            "/signin",
            data={"username": "alice", "password": "correct horse battery"}
            | {"csrf_token": csrf.group(1)},
            headers={"cookie": f"__Host-okap_presession={nonce}"},
        )
        assert signed_in.status_code == 303
        assert_host_cookie(signed_in.headers["set-cookie"], "okap_session")
        # A bare-named cookie (which any http page on the host could set) is not read.
        bare = browser.post(
            "/signin",
            data={"username": "alice", "password": "correct horse battery"}
            | {"csrf_token": csrf.group(1)},
            headers={"cookie": f"okap_presession={nonce}"},
        )
        assert bare.status_code == 403
    fresh_home = {"home": tmp_path / "fresh", "database_url": None}  # a vault nobody claimed
    second = open_vault(vault.settings.model_copy(update=fresh_home))
    try:
        with second.session() as session:
            token = issue_setup_token(session, 3600)
        assert token is not None
        with serve_app(create_app(second), free_port()) as fresh:
            setup = httpx.get(f"{fresh}/setup", params={"token": token})
            assert setup.status_code == 200
            assert_host_cookie(setup.headers["set-cookie"], "okap_setup")
    finally:
        second.dispose()
