"""Front door 1: authorization code + PKCE with a real loopback redirect, PAR, and the
ways a token request must fail."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import select

from okap_server.audit.models import SecurityEvent
from okap_server.context import Vault
from okap_server.grants.models import Grant
from tests.server.authorization.conftest import (
    CLIENT_ID,
    RedirectListener,
    authorize_params,
    code_from,
    details_json,
    entry,
    pkce_pair,
    redeem,
    sqlite_only,
    start_code_flow,
)
from tests.support.person import Person


def test_code_flow_with_pkce_and_loopback_redirect(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri)
        decision = person.approve(consent)
        got = code_from(decision.location, listener)
        assert got["state"] == "state-123"
        assert got["iss"] == live_url  # RFC 9207
        response = redeem(app, got["code"], verifier, listener.redirect_uri)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["access_token"].startswith("okap_")
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 91 * 86400
    [granted] = body["authorization_details"]
    assert granted["provider"] == "openai"
    assert granted["models"] == ["gpt-4o-mini"]
    assert granted["base_url"] == f"{live_url}/v1/openai"
    assert "key_id" not in granted
    # No limits asked: the vault's defaults, never unlimited.
    assert granted["limits"]["monthly_spend"] == 5.0
    assert granted["limits"]["requests_per_minute"] == 60


def test_par_then_authorize_with_request_uri_once(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    verifier, challenge = pkce_pair()
    with httpx.Client(base_url=live_url) as app:
        pushed = app.post("/oauth/par", data=authorize_params(listener.redirect_uri, challenge))
        assert pushed.status_code == 201, pushed.text
        request_uri = pushed.json()["request_uri"]
        assert request_uri.startswith("urn:ietf:params:oauth:request_uri:")
        assert pushed.json()["expires_in"] == 90
        query = {"client_id": CLIENT_ID, "request_uri": request_uri}
        first = app.get("/oauth/authorize", params=query)
        assert first.status_code == 303
        again = app.get("/oauth/authorize", params=query)
        assert again.status_code == 400
        assert "already used" in again.text
        decision = person.approve(first.headers["location"])
        got = code_from(decision.location, listener)
        token = redeem(app, got["code"], verifier, listener.redirect_uri)
    assert token.status_code == 200, token.text


@sqlite_only
def test_par_request_uri_bound_to_client(live_url: str, listener: RedirectListener) -> None:
    _, challenge = pkce_pair()
    with httpx.Client(base_url=live_url) as app:
        pushed = app.post("/oauth/par", data=authorize_params(listener.redirect_uri, challenge))
        other = app.get(
            "/oauth/authorize",
            params={
                "client_id": "https://evil.example",
                "request_uri": pushed.json()["request_uri"],
            },
        )
    assert other.status_code == 400
    assert "another client_id" in other.text


def test_replayed_code_is_refused_and_revokes_the_grant(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri)
        got = code_from(person.approve(consent).location, listener)
        first = redeem(app, got["code"], verifier, listener.redirect_uri)
        assert first.status_code == 200
        token = first.json()["access_token"]
        replay = redeem(app, got["code"], verifier, listener.redirect_uri)
        assert replay.status_code == 400
        assert replay.json()["error"] == "invalid_grant"
        assert "revoked" in replay.json()["error_description"]
        seen = app.post(
            "/oauth/introspect", data={"token": token}, headers={"Authorization": f"Bearer {token}"}
        )
    assert seen.status_code == 401  # the token no longer authenticates anything
    with vault.session() as session:
        [grant] = session.exec(select(Grant)).all()
        assert grant.revoked_at is not None
        kinds = [e.kind for e in session.exec(select(SecurityEvent))]
    assert "code_replayed" in kinds


MISMATCHES = [
    ({"code_verifier": "x" * 50}, "does not match"),
    ({"code_verifier": ""}, "required"),
    ({"redirect_uri": "http://127.0.0.1:1/other"}, "redirect_uri does not match"),
    ({"client_id": "https://other.example"}, "another client_id"),
]


def test_token_request_must_match_the_authorization(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    for change, reason in MISMATCHES:
        with httpx.Client(base_url=live_url) as app:
            consent, verifier = start_code_flow(app, listener.redirect_uri)
            got = code_from(person.approve(consent).location, listener)
            data = {
                "grant_type": "authorization_code",
                "code": got["code"],
                "redirect_uri": listener.redirect_uri,
                "client_id": CLIENT_ID,
                "code_verifier": verifier,
                **change,
            }
            response = app.post("/oauth/token", data=data)
        assert response.status_code == 400, change
        assert response.json()["error"] == "invalid_grant"
        assert reason in response.json()["error_description"]


def test_denial_redirects_with_access_denied(
    live_url: str, person: Person, listener: RedirectListener
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri)
    decision = person.deny(consent)
    got = code_from(decision.location, listener)
    assert got["error"] == "access_denied"
    assert got["state"] == "state-123"
    assert "code" not in got


@sqlite_only
def test_authorize_without_pkce_is_refused_by_redirect(
    live_url: str, listener: RedirectListener
) -> None:
    params = authorize_params(listener.redirect_uri, "")
    del params["code_challenge"]
    response = httpx.get(f"{live_url}/oauth/authorize", params=params)
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert "code_challenge" in query["error_description"][0]


@sqlite_only
def test_plain_pkce_is_refused(live_url: str, listener: RedirectListener) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(listener.redirect_uri, challenge, code_challenge_method="plain")
    response = httpx.get(f"{live_url}/oauth/authorize", params=params)
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"]


@sqlite_only
@pytest.mark.parametrize(
    "redirect_uri",
    ["http://evil.example/cb", "http://localhost:8080/cb", "ftp://x/", "https://a.example/#frag"],
)
def test_bad_redirect_uri_is_shown_not_followed(live_url: str, redirect_uri: str) -> None:
    _, challenge = pkce_pair()
    response = httpx.get(
        f"{live_url}/oauth/authorize", params=authorize_params(redirect_uri, challenge)
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "redirect_uri" in response.text


@sqlite_only
def test_unknown_grant_type(live_url: str) -> None:
    response = httpx.post(f"{live_url}/oauth/token", data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_two_providers_one_token(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    two = details_json(entry(models=["gpt-4o-mini"]), entry("anthropic", models=["claude-*"]))
    with httpx.Client(base_url=live_url) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri, authorization_details=two)
        decision = person.approve(consent, new_keys={"anthropic": "sk-ant-test-" + "b" * 30})
        got = code_from(decision.location, listener)
        body = redeem(app, got["code"], verifier, listener.redirect_uri).json()
    providers = [d["provider"] for d in body["authorization_details"]]
    assert providers == ["openai", "anthropic"]
    assert body["authorization_details"][1]["base_url"].endswith("/v1/anthropic")


def test_concurrent_redemption_gives_one_token(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    """Two redemptions racing on one code: exactly one token (the other is a replay)."""
    with httpx.Client(base_url=live_url) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri)
        got = code_from(person.approve(consent).location, listener)
    barrier = threading.Barrier(4)
    results: list[int] = []

    def race() -> None:
        with httpx.Client(base_url=live_url) as racer:
            barrier.wait()
            results.append(redeem(racer, got["code"], verifier, listener.redirect_uri).status_code)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [200, 400, 400, 400]


def test_a_standard_oauth_client_library_works(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    """Authlib's own OAuth 2.0 client (PKCE S256, RFC 8414 discovery) against the vault."""
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import OAuth2Client

    meta = httpx.get(f"{live_url}/.well-known/oauth-authorization-server").json()
    verifier = generate_token(48)
    with OAuth2Client(
        client_id=CLIENT_ID,
        redirect_uri=listener.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        url, state = client.create_authorization_url(
            meta["authorization_endpoint"],
            code_verifier=verifier,
            authorization_details=details_json(),
        )
        start = httpx.get(url)
        assert start.status_code == 303, start.text
        decision = person.approve(start.headers["location"])
        assert decision.location is not None
        httpx.get(decision.location)
        callback = listener.redirect_uri + "?" + urlsplit(decision.location).query
        token = client.fetch_token(
            meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
    assert token["access_token"].startswith("okap_")
    assert token["authorization_details"][0]["provider"] == "openai"
