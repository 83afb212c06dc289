"""Fixtures for the authorization server tests: short waits, a key, an app's helpers."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.support.person import Person


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with the waits shortened so the flows take seconds."""
    return settings.model_copy(
        update={
            "okap_wait_seconds": 4.0,
            "device_poll_interval_seconds": 1,
            "okap_poll_interval_seconds": 1,
        }
    )


@pytest.fixture
def openai_key(vault: Vault, owner: tuple[str, str]) -> str:
    """A stored OpenAI key of the owner; returns its id."""
    from okap_server.accounts.service import find_account

    with vault.session() as session:
        account = find_account(session, owner[0])
        assert account is not None
        key = vault.keys.add(
            session,
            account_id=account.id,
            provider="openai",
            label="personal",
            secret="sk-test-" + "a" * 40,
        )
        session.commit()
    return key.id


@pytest.fixture
def person(live_url: str, owner: tuple[str, str]) -> Iterator[Person]:
    with Person(live_url, *owner) as someone:
        yield someone


def entry(provider: str = "openai", **fields: Any) -> dict[str, Any]:
    return {"type": "ai_model_access", "provider": provider, **fields}


def details_json(*entries: dict[str, Any]) -> str:
    return json.dumps(list(entries) or [entry(models=["gpt-4o-mini"])])


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class RedirectListener:
    """A real loopback HTTP server standing in for a native app's redirect_uri."""

    def __init__(self) -> None:
        received: list[dict[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                query = parse_qs(urlsplit(self.path).query)
                received.append({k: v[0] for k, v in query.items()})
                body = b"You can close this window."
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_port}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[RedirectListener]:
    server = RedirectListener()
    yield server
    server.close()


CLIENT_ID = "https://notes.example"


def authorize_params(redirect_uri: str, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "client_id": CLIENT_ID,
        "client_name": "Notes",
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "state-123",
        "authorization_details": details_json(),
        **extra,
    }


def start_code_flow(app: Any, redirect_uri: str, **extra: str) -> tuple[str, str]:
    """GET /oauth/authorize as an app would; returns (consent URL, code_verifier)."""
    verifier, challenge = pkce_pair()
    response = app.get(
        "/oauth/authorize", params=authorize_params(redirect_uri, challenge, **extra)
    )
    assert response.status_code == 303, response.text
    assert "/consent/" in response.headers["location"]
    return response.headers["location"], verifier


def code_from(location: str | None, listener: RedirectListener) -> dict[str, str]:
    """Follow the consent page's redirect to the app's loopback listener, as a browser does."""
    import httpx

    assert location is not None and location.startswith(listener.redirect_uri)
    httpx.get(location, timeout=5)
    return listener.received[-1]


def redeem(app: Any, code: str, verifier: str, redirect_uri: str, **extra: str) -> Any:
    return app.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
            **extra,
        },
    )


# For checks that exercise no storage difference (validation, headers): run them on one
# back end only, to keep the suite fast. Flows that store and decide run on both.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])
