"""Sign-in, sessions, page headers, metadata, revocation and introspection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Response
from sqlmodel import select

from okap_server.accounts.models import WebSession
from okap_server.audit.models import SecurityEvent
from okap_server.context import Vault
from okap_server.settings import Settings
from okap_server.web.sessions import set_session_cookie
from tests.server.authorization.conftest import (
    RedirectListener,
    code_from,
    redeem,
    sqlite_only,
    start_code_flow,
)
from tests.support.person import Person, PersonError


def get_token(live_url: str, person: Person, listener: RedirectListener) -> str:
    with httpx.Client(base_url=live_url) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri)
        got = code_from(person.approve(consent).location, listener)
        return str(redeem(app, got["code"], verifier, listener.redirect_uri).json()["access_token"])


@sqlite_only
def test_metadata(live_url: str) -> None:
    meta = httpx.get(f"{live_url}/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == live_url
    assert meta["authorization_endpoint"] == f"{live_url}/oauth/authorize"
    assert meta["pushed_authorization_request_endpoint"] == f"{live_url}/oauth/par"
    assert meta["device_authorization_endpoint"] == f"{live_url}/oauth/device_authorization"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_details_types_supported"] == ["ai_model_access"]
    assert "urn:ietf:params:oauth:grant-type:device_code" in meta["grant_types_supported"]
    assert meta["okap_versions_supported"] == ["1.0"]
    assert meta["okap_proxy_base"] == f"{live_url}/v1"
    assert "openai" in meta["okap_providers_supported"]


@sqlite_only
@pytest.mark.parametrize("path", ["/signin", "/consent", "/device"])
def test_person_pages_refuse_framing_and_caching(page_url: str, person: Person, path: str) -> None:
    response = httpx.get(page_url + path) if path == "/signin" else person.open(path)
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


@sqlite_only
def test_sign_in_page_has_labelled_fields(page_url: str) -> None:
    page = httpx.get(f"{page_url}/signin").text
    assert '<label for="username">Username</label>' in page
    assert '<label for="password">Password</label>' in page


def test_wrong_password_then_throttled(live_url: str, owner: tuple[str, str], vault: Vault) -> None:
    wrong = Person(live_url, owner[0], "not the password")
    for _ in range(vault.settings.signin_max_failures):
        with pytest.raises(PersonError, match="Wrong username or password"):
            wrong.sign_in()
    right = Person(live_url, *owner)
    with pytest.raises(PersonError, match="Too many failed sign-ins"):
        right.sign_in()
    with vault.session() as session:
        kinds = [e.kind for e in session.exec(select(SecurityEvent))]
    assert kinds.count("signin_failed") == vault.settings.signin_max_failures


def test_sign_in_cookie_and_sign_out_deletes_the_session(
    page_url: str, person: Person, vault: Vault
) -> None:
    person.sign_in()
    # Signing in again from a browser that has a session replaces it (no fixation).
    with httpx.Client(base_url=page_url) as fresh:
        form = person.form_of(fresh.get("/signin").text, "/signin")
        presession = fresh.cookies["okap_presession"]
    data = dict(form.fields) | {"username": person.username, "password": person.password}
    person.client.cookies.set("okap_presession", presession)
    assert person.client.post("/signin", data=data).status_code == 303
    cookie = next(c for c in person.client.cookies.jar if c.name == "okap_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    with vault.session() as session:
        [row] = session.exec(select(WebSession)).all()
    assert row.id_hash != cookie.value  # only the hash is stored
    stolen = cookie.value
    person.sign_out()
    with vault.session() as session:
        assert session.exec(select(WebSession)).all() == []
    replayed = httpx.get(f"{page_url}/consent", cookies={"okap_session": stolen or ""})
    assert replayed.status_code == 303


@sqlite_only
def test_sign_in_form_needs_its_csrf_token(page_url: str, owner: tuple[str, str]) -> None:
    response = httpx.post(
        f"{page_url}/signin", data={"username": owner[0], "password": owner[1], "next": "/"}
    )
    assert response.status_code == 403


@sqlite_only
def test_next_is_never_an_open_redirect(page_url: str, person: Person) -> None:
    signed_out = httpx.get(f"{page_url}/signin", params={"next": "//evil.example/x"})
    person.sign_in()  # signed in, the page redirects to next at once
    signed_in = person.client.get("/signin", params={"next": "//evil.example/x"})
    assert (signed_out.status_code, signed_in.status_code) == (200, 303)
    for page in (signed_out, signed_in):
        assert "evil.example" not in page.headers.get("location", "")
        assert "evil.example" not in page.text


def test_revocation_and_introspection(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    token = get_token(live_url, person, listener)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_url) as app:
        assert app.post("/oauth/introspect", data={"token": token}).status_code == 401
        seen: dict[str, Any] = app.post(
            "/oauth/introspect", data={"token": token}, headers=auth
        ).json()
        assert seen["active"] is True
        assert seen["authorization_details"][0]["provider"] == "openai"
        day = seen["usage"]["openai"]["spend"]["day"]
        assert day == {"used": 0.0, "limit": 1.0, "remaining": 1.0}
        other = app.post("/oauth/introspect", data={"token": "okap_x"}, headers=auth).json()
        assert other == {"active": False}
        assert app.post("/oauth/revoke", data={"token": token}).status_code == 200
        assert app.post("/oauth/revoke", data={"token": token}).status_code == 200
        assert app.post("/oauth/revoke", data={"token": "nonsense"}).status_code == 200
        after = app.post("/oauth/introspect", data={"token": token}, headers=auth)
    assert after.status_code == 401
    with vault.session() as session:
        kinds = [e.kind for e in session.exec(select(SecurityEvent))]
    assert kinds.count("grant_revoked") == 1


def test_session_cookie_is_secure_behind_https(tmp_path: Path) -> None:
    response = Response()
    set_session_cookie(response, Settings(home=tmp_path, public_url="https://vault.example"), "v")
    header = response.headers["set-cookie"]
    assert header.startswith("__Host-okap_session=v;")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert attribute.lower() in header.lower()
    plain = Response()
    set_session_cookie(plain, Settings(home=tmp_path, public_url="http://127.0.0.1:8400"), "v")
    assert "secure" not in plain.headers["set-cookie"].lower()
