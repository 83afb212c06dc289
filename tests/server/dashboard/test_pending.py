"""Pending requests: decided from the dashboard list, and the JSON the page polls."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest
from sqlmodel import select

from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault
from okap_server.grants.models import Grant
from tests.server.dashboard.conftest import Visitor


@pytest.fixture
def backend() -> str:
    return "sqlite"


def _ask(live_url: str, name: str) -> dict[str, str]:
    answer = httpx.post(
        f"{live_url}/okap/authorize",
        json={
            "okap": "1.0",
            "authorization_details": [
                {"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}
            ],
            "client": {"name": name, "url": "https://cli.example"},
        },
    ).json()
    assert answer["status"] == "pending", answer
    return dict(answer)


def test_approve_as_asked_from_the_list(live_url: str, people: Callable[..., Visitor]) -> None:
    alice = people("alice")
    asked = _ask(live_url, "Terminal Buddy")
    status = alice.page("/pending/status").json()
    request_id = asked["consent_url"].rsplit("/", 1)[1]
    assert status["count"] == 1 and status["ids"] == [request_id] and status["poll_ms"] == 300
    listing = alice.page("/pending").text
    assert "Terminal Buddy" in listing and "gpt-4o-mini" in listing
    assert "Terminal Buddy" in alice.page("/pending/list").text
    assert "Terminal Buddy" in alice.page("/").text  # "Waiting for you" on the home page

    no_key = alice.post(f"/pending/{request_id}/approve")
    assert no_key.status_code == 409 and "You have no OpenAI key yet" in no_key.text
    alice.post("/keys", {"provider": "openai", "label": "mine", "secret": "sk-mine-0123456789"})
    approved = alice.post(f"/pending/{request_id}/approve")
    assert approved.status_code == 303 and approved.headers["location"].endswith("approved")
    granted = httpx.get(asked["poll_url"]).json()
    assert granted["status"] == "granted"
    app = openai.OpenAI(
        base_url=granted["authorization_details"][0]["base_url"], api_key=granted["token"]
    )
    app.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert "Terminal Buddy" in alice.page("/").text
    assert alice.page("/pending/status").json()["count"] == 0
    again = alice.post(f"/pending/{request_id}/approve")
    assert again.status_code == 409 and "already decided" in again.text


def test_deny_from_the_list(live_url: str, people: Callable[..., Visitor]) -> None:
    alice = people("alice")
    asked = _ask(live_url, "Unwanted")
    request_id = asked["consent_url"].rsplit("/", 1)[1]
    assert alice.post(f"/pending/{request_id}/deny").status_code == 303
    assert httpx.get(asked["poll_url"]).json()["status"] == "denied"
    assert "Unwanted" not in alice.page("/pending").text


def test_the_code_flow_is_approved_on_its_consent_page_only(
    live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    pushed = httpx.post(
        f"{live_url}/oauth/par",
        data={
            "client_id": "https://web.example",
            "client_name": "Web App",
            "redirect_uri": "https://web.example/cb",
            "response_type": "code",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            "authorization_details": '[{"type": "ai_model_access", "provider": "openai"}]',
        },
    )
    assert pushed.status_code == 201
    listing = alice.page("/pending").text
    assert "Web App" in listing and '/approve"' not in listing
    request_id = listing.split('data-request-id="')[1].split('"')[0]
    refused = alice.post(f"/pending/{request_id}/approve")
    assert refused.status_code == 409 and "Open this request" in refused.text


def test_status_needs_a_session(page_url: str) -> None:
    response = httpx.get(f"{page_url}/pending/status")
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")


def test_approving_as_asked_uses_the_accounts_default_limits(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    alice.post("/keys", {"provider": "openai", "label": "mine", "secret": "sk-mine-0123456789"})
    alice.post(
        "/settings/preferences",
        {"monthly_spend": "0.5", "daily_spend": "0.1", "requests_per_day": "20"},
    )
    asked = _ask(live_url, "No Limits Asked")
    request_id = asked["consent_url"].rsplit("/", 1)[1]
    assert alice.post(f"/pending/{request_id}/approve").status_code == 303
    with vault.session() as session:
        row = session.get(AuthorizationRequest, request_id)
        assert row is not None and row.granted_details is not None
        limits = row.granted_details[0]["limits"]
    assert limits["monthly_spend"] == 0.5 and limits["daily_spend"] == 0.1
    assert limits["requests_per_day"] == 20 and limits["requests_per_minute"] is None


def _approved_once(live_url: str, alice: Visitor, name: str) -> tuple[dict[str, str], str]:
    """The app asked and was approved as asked from the list: (its poll answer, its token)."""
    asked = _ask(live_url, name)
    request_id = asked["consent_url"].rsplit("/", 1)[1]
    assert alice.post(f"/pending/{request_id}/approve").status_code == 303
    granted = httpx.get(asked["poll_url"]).json()
    assert granted["status"] == "granted"
    return granted, str(granted["token"])


def test_the_list_offers_reuse_of_the_apps_live_grant(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    alice.post("/keys", {"provider": "openai", "label": "mine", "secret": "sk-mine-0123456789"})
    first, old_token = _approved_once(live_url, alice, "Twice Asked")

    again = _ask(live_url, "Twice Asked")
    request_id = again["consent_url"].rsplit("/", 1)[1]
    listing = " ".join(alice.page("/pending/list").text.split())
    assert "Twice Asked already has this access" in listing
    assert "Reuse existing access" in listing and "Approve as separate access" in listing
    offered = listing.split('name="reuse_grant_id" value="')[1].split('"')[0]

    reused = alice.post(f"/pending/{request_id}/reuse", {"reuse_grant_id": offered})
    assert reused.status_code == 303 and reused.headers["location"].endswith("reused")
    second = httpx.get(again["poll_url"]).json()
    assert second["status"] == "granted" and second["token"] != old_token
    assert second["authorization_details"] == first["authorization_details"]
    usage = f"{live_url}/okap/usage"
    assert httpx.get(usage, headers={"Authorization": f"Bearer {old_token}"}).status_code == 401
    ok = httpx.get(usage, headers={"Authorization": f"Bearer {second['token']}"})
    assert ok.status_code == 200
    with vault.session() as session:
        assert [g.id for g in session.exec(select(Grant)).all()] == [offered]


def test_reuse_of_a_grant_revoked_meanwhile_is_refused(
    live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    alice.post("/keys", {"provider": "openai", "label": "mine", "secret": "sk-mine-0123456789"})
    _approved_once(live_url, alice, "Revoked Meanwhile")
    again = _ask(live_url, "Revoked Meanwhile")
    request_id = again["consent_url"].rsplit("/", 1)[1]
    offered = alice.page("/pending/list").text.split('name="reuse_grant_id" value="')[1]
    grant_id = offered.split('"')[0]
    assert alice.post(f"/apps/{grant_id}/revoke").status_code == 303
    refused = alice.post(f"/pending/{request_id}/reuse", {"reuse_grant_id": grant_id})
    assert refused.status_code == 409 and "The access this app had is gone" in refused.text
    assert httpx.get(again["poll_url"]).json()["status"] == "pending"
