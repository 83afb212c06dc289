"""Front door 2: POST /okap/authorize (granted, denied, pending then poll, errors)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from sqlmodel import func, select

from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault
from tests.support.person import Person

BODY: dict[str, Any] = {
    "okap": "1.0",
    "authorization_details": [
        {
            "type": "ai_model_access",
            "provider": "openai",
            "models": ["gpt-4o-mini"],
            "limits": {"daily_spend": 2.0},
            "reason": "Summarise my notes",
        }
    ],
    "client": {
        "name": "Notes",
        "url": "https://notes.example",
        "callback": "https://notes.example/cb",
    },
}


def in_background(action: Any) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def test_granted_while_the_app_waits(
    live_url: str, person: Person, openai_key: str, settings: Any
) -> None:
    helper = in_background(
        lambda: person.approve_next_pending(timeout=5, limits={"daily_spend": 1})
    )
    with httpx.Client(base_url=live_url, timeout=10) as app:
        answer = app.post("/okap/authorize", json=BODY, headers={"Prefer": "wait=8"})
    helper.join(5)
    body = answer.json()
    assert answer.status_code == 200
    assert body["okap"] == "1.0"
    assert body["status"] == "granted", body
    assert body["token"].startswith("okap_")
    assert body["token_type"] == "Bearer"
    [granted] = body["authorization_details"]
    assert granted["limits"]["daily_spend"] == 1.0  # narrowed by the person
    assert granted["base_url"] == f"{live_url}/v1/openai"
    assert granted["expires"]


def test_denied(live_url: str, person: Person) -> None:
    person.sign_in()
    helper = in_background(lambda: person.deny_next_pending(timeout=5))
    with httpx.Client(base_url=live_url, timeout=10) as app:
        body = app.post("/okap/authorize", json=BODY, headers={"Prefer": "wait=8"}).json()
    helper.join(5)
    assert body == {"okap": "1.0", "status": "denied", "reason": "The person denied the request."}


def test_pending_then_poll(live_url: str, person: Person, openai_key: str) -> None:
    with httpx.Client(base_url=live_url, timeout=10) as app:
        pending = app.post("/okap/authorize", json=BODY, headers={"Prefer": "wait=1"}).json()
        assert pending["status"] == "pending"
        assert pending["poll_url"].startswith(f"{live_url}/okap/authorize/")
        assert pending["interval"] == 1
        assert pending["expires_at"].endswith("Z")
        still = app.get(pending["poll_url"]).json()
        assert still["status"] == "pending"
        person.approve(pending["consent_url"])
        granted = app.get(pending["poll_url"]).json()
        assert granted["status"] == "granted"
        assert granted["token"].startswith("okap_")
        again = app.get(pending["poll_url"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"  # the token is shown once


def test_invalid_request_stores_nothing(live_url: str, vault: Vault) -> None:
    bad = {**BODY, "authorization_details": [{"type": "ai_model_access", "provider": "nope"}]}
    with httpx.Client(base_url=live_url) as app:
        response = app.post("/okap/authorize", json=bad)
        version = app.post("/okap/authorize", json={**BODY, "okap": "2.0"})
        nan = app.post(
            "/okap/authorize",
            content=b'{"okap":"1.0","authorization_details":[{"type":"ai_model_access",'
            b'"provider":"openai","limits":{"daily_spend":NaN}}]}',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json() == {
        "okap": "1.0",
        "status": "error",
        "error": "invalid_authorization_details",
        "error_description": "authorization_details[0].provider: unknown provider 'nope'",
    }
    assert version.json()["error"] == "invalid_request"
    assert nan.json()["error"] == "invalid_request"  # the body is not strict JSON (SPEC "Errors")
    with vault.session() as session:
        assert session.exec(select(func.count()).select_from(AuthorizationRequest)).one() == 0
