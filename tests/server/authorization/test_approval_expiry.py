"""An approval must be collected soon (issue 15): an approved request whose app never came
back cannot be collected later, on the OKAP binding or the device flow. Time is moved by
ageing the request's stored times, not by sleeping."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import select

from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.requests import tidy
from okap_server.context import Vault
from okap_server.grants.models import Grant
from tests.support.person import Person

DETAILS = [{"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def age(vault: Vault, request_id: str, by: timedelta) -> None:
    """As if ``by`` had passed since the request was made and decided."""
    with vault.session() as session:
        row = session.get(AuthorizationRequest, request_id)
        assert row is not None
        row.created_at -= by
        row.expires_at -= by
        if row.decided_at is not None:
            row.decided_at -= by
        session.add(row)
        session.commit()


def grants(vault: Vault) -> list[Grant]:
    with vault.session() as session:
        return list(session.exec(select(Grant)).all())


def test_an_okap_approval_not_collected_in_time_cannot_be_collected(
    live_url: str, vault: Vault, person: Person, openai_key: str
) -> None:
    body = {"okap": "1.0", "authorization_details": DETAILS, "client": {"name": "Gone App"}}
    pending = httpx.post(
        f"{live_url}/okap/authorize", json=body, headers={"Prefer": "wait=0"}
    ).json()
    request_id = pending["consent_url"].rsplit("/", 1)[1]
    person.approve(pending["consent_url"])
    age(vault, request_id, timedelta(days=365))
    late = httpx.get(pending["poll_url"]).json()
    assert late["status"] == "denied" and late.get("error") == "expired_token", late
    assert "token" not in late
    assert grants(vault) == []
    with vault.session() as session:
        tidy(session)  # the housekeeping writes it down too
        row = session.get(AuthorizationRequest, request_id)
        assert row is not None and row.status == "expired"
    assert httpx.get(pending["poll_url"]).json()["status"] == "denied"


def test_within_the_window_it_is_collected(
    live_url: str, vault: Vault, person: Person, openai_key: str
) -> None:
    body = {"okap": "1.0", "authorization_details": DETAILS, "client": {"name": "Slow App"}}
    pending = httpx.post(
        f"{live_url}/okap/authorize", json=body, headers={"Prefer": "wait=0"}
    ).json()
    person.approve(pending["consent_url"])
    request_id = pending["consent_url"].rsplit("/", 1)[1]
    window = timedelta(seconds=vault.settings.approval_ttl_seconds)
    with vault.session() as session:
        row = session.get(AuthorizationRequest, request_id)
        assert row is not None and row.decided_at is not None
        # The window starts at the approval, whatever was left of the pending time.
        assert row.expires_at - row.decided_at == window
    age(vault, request_id, window - timedelta(seconds=5))
    assert httpx.get(pending["poll_url"]).json()["status"] == "granted"


def test_a_device_approval_not_polled_in_time_expires(
    live_url: str, vault: Vault, person: Person, openai_key: str
) -> None:
    with httpx.Client(base_url=live_url) as app:
        started: dict[str, Any] = app.post(
            "/oauth/device_authorization",
            data={"client_id": "okap-cli", "authorization_details": json.dumps(DETAILS)},
        ).json()
        consent = person.enter_user_code(started["user_code"])
        person.approve(consent)
        age(vault, consent.rsplit("/", 1)[1], timedelta(days=1))  # past any window
        polled = app.post(
            "/oauth/token",
            data={
                "grant_type": DEVICE_GRANT,
                "device_code": started["device_code"],
                "client_id": "okap-cli",
            },
        )
    assert polled.status_code == 400
    assert polled.json()["error"] == "expired_token"
    assert grants(vault) == []
