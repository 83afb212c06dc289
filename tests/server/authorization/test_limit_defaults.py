"""Default limits fill each limit an app did not name, on every front door; the person can
still clear a default on the consent page, but not remove a limit the app asked for.

An app that names only ``requests_per_minute`` must not get unlimited spend (issue 15)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from okap_server.context import Vault
from tests.server.authorization.conftest import (
    RedirectListener,
    code_from,
    pkce_pair,
    redeem,
    start_code_flow,
)
from tests.support.person import Person

ONLY_RATE: list[dict[str, Any]] = [
    {
        "type": "ai_model_access",
        "provider": "openai",
        "models": ["gpt-4o-mini"],
        "limits": {"requests_per_minute": 1000},
    }
]
NOTHING_NAMED: list[dict[str, Any]] = [
    {"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}
]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

# A front door: given the person, the details and the narrowing, the granted entries the
# app receives with its token.
Door = Callable[[str, Person, RedirectListener, list[dict[str, Any]], dict[str, Any]], list[Any]]


def via_okap(
    live_url: str, person: Person, _: RedirectListener, details: list[dict[str, Any]], choice: Any
) -> list[Any]:
    body = {"okap": "1.0", "authorization_details": details, "client": {"name": "Notes"}}
    with httpx.Client(base_url=live_url, timeout=10) as app:
        pending = app.post("/okap/authorize", json=body, headers={"Prefer": "wait=0"}).json()
        person.approve(pending["consent_url"], **choice)
        granted = app.get(pending["poll_url"]).json()
    assert granted["status"] == "granted", granted
    return list(granted["authorization_details"])


def via_code_flow_and_par(
    live_url: str, person: Person, listener: RedirectListener, details: Any, choice: Any
) -> list[Any]:
    verifier, challenge = pkce_pair()
    with httpx.Client(base_url=live_url, timeout=10) as app:
        pushed = app.post(
            "/oauth/par",
            data={
                "client_id": "https://notes.example",
                "redirect_uri": listener.redirect_uri,
                "response_type": "code",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "authorization_details": json.dumps(details),
            },
        )
        assert pushed.status_code == 201, pushed.text
        consent, _ = start_code_flow(
            app,
            listener.redirect_uri,
            request_uri=pushed.json()["request_uri"],
            code_challenge=challenge,
        )
        decision = person.approve(consent, **choice)
        got = code_from(decision.location, listener)
        body = redeem(app, got["code"], verifier, listener.redirect_uri).json()
    return list(body["authorization_details"])


def via_device(
    live_url: str, person: Person, _: RedirectListener, details: Any, choice: Any
) -> list[Any]:
    with httpx.Client(base_url=live_url, timeout=10) as app:
        started = app.post(
            "/oauth/device_authorization",
            data={"client_id": "okap-cli", "authorization_details": json.dumps(details)},
        ).json()
        person.approve_device(started["user_code"], **choice)
        body = app.post(
            "/oauth/token",
            data={
                "grant_type": DEVICE_GRANT,
                "device_code": started["device_code"],
                "client_id": "okap-cli",
            },
        ).json()
    return list(body["authorization_details"])


DOORS = pytest.mark.parametrize(
    "door", [via_okap, via_code_flow_and_par, via_device], ids=["okap", "code+par", "device"]
)


@DOORS
def test_naming_one_limit_keeps_the_default_spend_limits(
    door: Door, live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    [granted] = door(live_url, person, listener, ONLY_RATE, {})
    assert granted["limits"] == {
        "monthly_spend": 5.0,
        "weekly_spend": None,
        "daily_spend": 1.0,
        "total_spend": None,
        "requests_per_minute": 1000,
        "requests_per_day": 1000,
        "tokens_per_request": None,
    }


@DOORS
def test_the_person_can_clear_a_default_but_not_what_the_app_asked(
    door: Door, live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    cleared = {"limits": {"daily_spend": None, "monthly_spend": None, "requests_per_day": 20}}
    [granted] = door(live_url, person, listener, NOTHING_NAMED, cleared)
    assert granted["limits"] == {
        "monthly_spend": None,  # cleared: "empty" on the form is no limit, not "as asked"
        "weekly_spend": None,
        "daily_spend": None,
        "total_spend": None,
        "requests_per_minute": 60,  # left as shown: the default
        "requests_per_day": 20,  # changed (a default may be lowered or raised)
        "tokens_per_request": None,
    }
    [kept] = door(live_url, person, listener, ONLY_RATE, {"limits": {"daily_spend": None}})
    assert kept["limits"]["daily_spend"] is None
    assert kept["limits"]["monthly_spend"] == 5.0
    assert kept["limits"]["requests_per_minute"] == 1000


def test_clearing_every_limit_means_none_at_the_proxy_too(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    body = {"okap": "1.0", "authorization_details": NOTHING_NAMED, "client": {"name": "Mine"}}
    every = dict.fromkeys(
        ["monthly_spend", "daily_spend", "requests_per_minute", "requests_per_day"]
    )
    with httpx.Client(base_url=live_url, timeout=10) as app:
        pending = app.post("/okap/authorize", json=body, headers={"Prefer": "wait=0"}).json()
        person.approve(pending["consent_url"], limits=every)
        granted = app.get(pending["poll_url"]).json()
        assert set(granted["authorization_details"][0]["limits"].values()) == {None}
        usage = app.get(
            "/okap/usage", headers={"Authorization": f"Bearer {granted['token']}"}
        ).json()
    # The proxy's own view: no limit at all, not the vault's defaults put back.
    spend = usage["usage"]["openai"]["spend"]
    assert spend["day"]["limit"] is None and spend["month"]["limit"] is None
    assert usage["usage"]["openai"]["requests"]["minute"]["limit"] is None


def test_an_asked_limit_cannot_be_removed(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener
) -> None:
    body = {"okap": "1.0", "authorization_details": ONLY_RATE, "client": {"name": "Notes"}}
    with httpx.Client(base_url=live_url, timeout=10) as app:
        pending = app.post("/okap/authorize", json=body, headers={"Prefer": "wait=0"}).json()
    refused = person.approve(
        pending["consent_url"], limits={"requests_per_minute": None}, check=False
    )
    assert refused.status_code == 422
    assert "not remove it" in refused.message


def test_the_consent_page_shows_the_effective_limits_and_the_rule(
    live_url: str, person: Person, openai_key: str
) -> None:
    body = {"okap": "1.0", "authorization_details": ONLY_RATE, "client": {"name": "Notes"}}
    with httpx.Client(base_url=live_url, timeout=10) as app:
        pending = app.post("/okap/authorize", json=body, headers={"Prefer": "wait=0"}).json()
    page = person.open(pending["consent_url"]).text
    form = person.form_of(page, "/consent/")
    shown = {name: value for name, value in form.fields if ".limit." in name}
    assert shown == {
        "d0.limit.monthly_spend": "5.00",
        "d0.limit.weekly_spend": "",
        "d0.limit.daily_spend": "1.00",
        "d0.limit.total_spend": "",
        "d0.limit.requests_per_minute": "1,000",
        "d0.limit.requests_per_day": "1,000",
        "d0.limit.tokens_per_request": "",
    }
    text = " ".join(page.split())
    assert "A limit the app asked for is shown as asked, and you can only lower it." in text
    assert "Every limit it did not ask for is filled in from your default limits" in text
    assert "asked: 1,000, can only be lowered" in text and "your default" in text
    assert "A cleared field means no limit of that kind." in text
    assert "$5.00 a month · $1.00 a day · 1,000 requests a minute" in text


def test_approve_as_asked_from_the_list_fills_the_defaults(
    live_url: str, person: Person, vault: Vault, openai_key: str
) -> None:
    body = {"okap": "1.0", "authorization_details": ONLY_RATE, "client": {"name": "Listed"}}
    with httpx.Client(base_url=live_url, timeout=10) as app:
        pending = app.post("/okap/authorize", json=body, headers={"Prefer": "wait=0"}).json()
        request_id = pending["consent_url"].rsplit("/", 1)[1]
        page = person.open("/pending").text
        form = person.form_of(page, f"/pending/{request_id}/approve")
        assert person.client.post(form.action, data=dict(form.fields)).status_code == 303
        granted = app.get(pending["poll_url"]).json()
    limits = granted["authorization_details"][0]["limits"]
    assert limits["monthly_spend"] == 5.0 and limits["daily_spend"] == 1.0
    assert limits["requests_per_minute"] == 1000
