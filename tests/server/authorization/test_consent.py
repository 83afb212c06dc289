"""The consent page: what the person sees, narrowing, CSRF, deciding once, and who decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from okap_server.accounts.service import create_account, find_account
from okap_server.audit.models import SecurityEvent
from okap_server.authorization.models import AuthorizationRequest
from okap_server.context import Vault
from okap_server.grants.models import Grant
from tests.server.authorization.conftest import (
    RedirectListener,
    code_from,
    details_json,
    entry,
    redeem,
    sqlite_only,
    start_code_flow,
)
from tests.support.person import Person, PersonError

ASKED = details_json(
    entry(
        models=["gpt-4o-mini", "gpt-4.1*"],
        capabilities=["chat", "embeddings"],
        limits={"monthly_spend": 10.0, "daily_spend": 2.0, "requests_per_minute": 60},
        expires="2099-01-01T00:00:00Z",
        reason="Summarise my notes",
    )
)


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"max_grant_days": 40000})


def test_person_narrows_and_the_token_says_what_was_granted(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri, authorization_details=ASKED)
        page = person.open(consent).text
        for shown in (
            "Notes",
            "notes.example",
            "127.0.0.1",
            "gpt-4.1*",
            "Summarise my notes",
            "Unverified",
            "Approve",
            "Deny",
            "embeddings",
            "personal",
        ):
            assert shown in page, shown
        soon = datetime.now(UTC) + timedelta(days=3)
        decision = person.approve(
            consent,
            models=["gpt-4o-mini"],
            capabilities=["chat"],
            limits={"monthly_spend": 3, "requests_per_day": 100},
            expires=soon,
            key_id=openai_key,
        )
        got = code_from(decision.location, listener)
        body = redeem(app, got["code"], verifier, listener.redirect_uri).json()
    [granted] = body["authorization_details"]
    assert granted["models"] == ["gpt-4o-mini"]
    assert granted["capabilities"] == ["chat"]
    assert granted["limits"]["monthly_spend"] == 3.0
    assert granted["limits"]["daily_spend"] == 2.0
    assert granted["limits"]["requests_per_day"] == 100
    assert granted["expires"] == soon.strftime("%Y-%m-%dT%H:%M:00Z")
    assert body["expires_in"] <= 3 * 86400
    with vault.session() as session:
        [grant] = session.exec(select(Grant)).all()
    assert grant.details[0]["key_id"] == openai_key
    assert grant.client_name == "Notes"
    assert grant.redirect_host == "127.0.0.1"


WIDENINGS: list[tuple[dict[str, Any], str]] = [
    ({"limits": {"monthly_spend": 50}}, "monthly spend $50.00 is more than the app asked"),
    ({"models": ["gpt-5"]}, "was not asked for"),
    ({"models": []}, "keep at least one model"),
    ({"capabilities": ["images"]}, "was not asked for"),
    ({"expires": "2100-01-01T00:00"}, "only be made earlier"),
    ({"drop": ["openai"]}, "leave at least one provider"),
    ({"limits": {"daily_spend": "lots"}}, "must be a number"),
    ({"limits": {"daily_spend": None}}, "not remove it"),
]


def test_consent_can_only_narrow(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri, authorization_details=ASKED)
    for narrowing, message in WIDENINGS:
        refused = person.approve(consent, check=False, **narrowing)
        assert refused.status_code == 422, narrowing
        assert message in refused.message
    # Still pending: the person can fix it and approve.
    assert person.approve(consent).location is not None


def test_no_key_yet_add_one_on_the_consent_page(
    live_url: str, person: Person, listener: RedirectListener, vault: Vault
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri)
    page = person.open(consent).text
    assert "no OpenAI key in this vault yet" in page
    refused = person.approve(consent, check=False)
    assert refused.status_code == 422 and "no openai key" in refused.message.lower()
    secret = "sk-proj-" + "z" * 40
    decision = person.approve(consent, new_keys={"openai": secret})
    assert decision.location is not None
    assert secret not in decision.page
    with vault.session() as session:
        account = find_account(session, "alice")
        assert account is not None
        [key] = vault.keys.list(session, account.id, "openai")
    assert key.hint.endswith("zzzz")


@sqlite_only
def test_app_supplied_text_is_escaped_and_risky_callback_warned(
    live_url: str, person: Person, openai_key: str
) -> None:
    body = {
        "okap": "1.0",
        "authorization_details": [
            {"type": "ai_model_access", "provider": "openai", "reason": "<b>bold</b> & more"}
        ],
        "client": {"name": "<script>alert(1)</script>", "callback": "http://evil.example/cb"},
    }
    pending = httpx.post(
        f"{live_url}/okap/authorize", json=body, headers={"Prefer": "wait=0"}
    ).json()
    page = person.open(pending["consent_url"]).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page
    assert "neither https nor on this computer" in page


def test_missing_or_wrong_csrf_token_is_refused(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri)
    person.open(consent)
    path = "/consent/" + consent.rsplit("/", 1)[1]
    for token in (None, "forged"):
        data = {"decision": "approve", "d0.include": "1", "d0.models": "gpt-4o-mini"}
        if token:
            data["csrf_token"] = token
        response = person.client.post(path, data=data)
        assert response.status_code == 403
        assert "security token" in response.text
    # Nothing was decided.
    assert person.approve(consent).location is not None


def test_decided_once(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri)
    page = person.open(consent).text
    person.approve(consent)
    again = person.deny(consent, check=False)
    assert again.status_code == 410
    assert "already approved" in again.message
    # A second tab posting the form it still shows is refused too.
    form = person.form_of(page, "/consent/")
    late = person.client.post(form.action, data=dict(form.fields) | {"decision": "deny"})
    assert late.status_code == 410


def test_second_account_cannot_decide_the_first_accounts_request(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    with vault.session() as session:
        create_account(session, "bob", "bob's long password")
        session.commit()
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri)
    assert person.open(consent).status_code == 200  # looking claims nothing (a GET is safe)
    with Person(live_url, "bob", "bob's long password") as bob:
        assert bob.pending() == []  # a team vault lists nobody's unclaimed request
        # Alice's first Approve is refused (a bad limit) but binds the request to her.
        refused = person.approve(consent, limits={"daily_spend": -1}, check=False)
        assert refused.status_code == 422
        seen = bob.approve(consent, check=False)
        assert seen.status_code == 403
        assert "Another account" in seen.message
        assert bob.pending() == []
        assert bob.deny(consent, check=False).status_code == 403
    assert person.pending() == [consent]
    assert person.approve(consent).location is not None
    with vault.session() as session:
        row = session.get(AuthorizationRequest, consent.rsplit("/", 1)[1])
        alice = find_account(session, person.username)
        assert row is not None and alice is not None and row.decided_by == alice.id


def test_signed_out_person_is_sent_to_sign_in_and_back(
    live_url: str, page_url: str, openai_key: str, listener: RedirectListener
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, _ = start_code_flow(app, listener.redirect_uri)
        first = app.get(consent)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/signin?next=/consent/")
    with httpx.Client(base_url=page_url) as browser:
        page = browser.get(first.headers["location"])
        assert 'name="next" value="/consent/' in page.text
        assert "An app is asking for access" in page.text


def test_expired_pending_request(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri)
    with vault.session() as session:
        row = session.get(AuthorizationRequest, consent.rsplit("/", 1)[1])
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
        session.commit()
    shown = person.approve(consent, check=False)
    assert shown.status_code == 410
    assert "expired" in shown.message
    assert person.pending() == []
    with vault.session() as session:
        row = session.get(AuthorizationRequest, consent.rsplit("/", 1)[1])
        assert row is not None and row.status == "expired"  # written by the housekeeping


def test_decisions_are_audited(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    with httpx.Client(base_url=live_url) as app:
        approved, _ = start_code_flow(app, listener.redirect_uri)
        denied, _ = start_code_flow(app, listener.redirect_uri)
    person.approve(approved)
    person.deny(denied)
    with vault.session() as session:
        kinds = [e.kind for e in session.exec(select(SecurityEvent))]
    assert {"signin", "grant_approved", "grant_denied"} <= set(kinds)


@sqlite_only
def test_person_helper_reports_a_refusal(live_url: str, person: Person) -> None:
    with pytest.raises(PersonError, match="No such request"):
        person.approve(f"{live_url}/consent/req_doesnotexist")
