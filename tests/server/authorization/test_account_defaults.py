"""An app that names no limits gets the deciding person's own default limits, if set."""

from __future__ import annotations

from typing import Any

import httpx

from okap_server.accounts.service import find_account
from okap_server.authorization.defaults import DEFAULT_LIMITS_KEY
from okap_server.context import Vault
from tests.support.person import Person

MINE = {
    "monthly_spend": 0.5,
    "daily_spend": 0.25,
    "requests_per_minute": 5,
    "requests_per_day": 50,
}


def _set_defaults(vault: Vault, username: str, limits: dict[str, Any]) -> None:
    with vault.session() as session:
        account = find_account(session, username)
        assert account is not None
        account.preferences = {**(account.preferences or {}), DEFAULT_LIMITS_KEY: limits}
        session.add(account)
        session.commit()


def _ask(live_url: str, limits: dict[str, Any] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "ai_model_access", "provider": "openai"}
    if limits is not None:
        entry["limits"] = limits
    body = {"okap": "1.0", "authorization_details": [entry], "client": {"name": "Notes"}}
    with httpx.Client(base_url=live_url, timeout=10) as app:
        answer = app.post("/okap/authorize", json=body, headers={"Prefer": "wait=0"}).json()
    assert answer["status"] == "pending", answer
    return dict(answer)


def test_consent_page_applies_the_accounts_defaults(
    live_url: str, vault: Vault, owner: tuple[str, str], person: Person, openai_key: str
) -> None:
    _set_defaults(vault, owner[0], MINE)
    pending = _ask(live_url, None)
    page = person.open(pending["consent_url"]).text
    assert 'value="0.5"' in page or 'value="0.50"' in page  # the form shows my default
    person.approve(pending["consent_url"])
    with httpx.Client(timeout=10) as app:
        granted = app.get(pending["poll_url"]).json()
    assert granted["status"] == "granted", granted
    limits = granted["authorization_details"][0]["limits"]
    assert {k: limits[k] for k in MINE} == MINE


def test_limits_the_app_named_are_kept_and_my_defaults_fill_the_rest(
    live_url: str, vault: Vault, owner: tuple[str, str], person: Person, openai_key: str
) -> None:
    _set_defaults(vault, owner[0], MINE)
    pending = _ask(live_url, {"monthly_spend": 3.0})
    person.approve(pending["consent_url"])
    with httpx.Client(timeout=10) as app:
        granted = app.get(pending["poll_url"]).json()
    limits = granted["authorization_details"][0]["limits"]
    assert limits["monthly_spend"] == 3.0
    assert {k: limits[k] for k in MINE if k != "monthly_spend"} == {
        "daily_spend": 0.25,
        "requests_per_minute": 5,
        "requests_per_day": 50,
    }
