"""Connected apps over real HTTP: usage after a proxied call, edit limits, revoke."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai
import pytest
from sqlmodel import select

from okap_server.audit.models import SecurityEvent
from okap_server.context import Vault
from okap_server.grants.models import Grant
from tests.server.dashboard.conftest import Visitor
from tests.support.grants import entry, make_grant


def _wait_for(visitor: Visitor, path: str, text: str, tries: int = 100) -> str:
    for _ in range(tries):
        page = visitor.page(path).text
        if text in page:
            return page
        time.sleep(0.05)
    raise AssertionError(f"{path} never showed {text!r}")


def test_usage_shows_on_the_card_and_the_detail_page(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    issued = make_grant(
        vault,
        entry("openai", limits={"monthly_spend": 10.0, "requests_per_day": 50}),
        username="alice",
        client_name="Notes <b>Summariser</b>",
    )
    empty = alice.page("/").text
    assert "$0.00 of $10.00 this month" in empty and "0 of 50 requests today" in empty
    assert "Notes &lt;b&gt;Summariser&lt;/b&gt;" in empty  # the app's name is escaped
    app = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=issued.token, max_retries=0)
    app.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    home = _wait_for(alice, "/", "1 of 50 requests today")
    assert "expires in 29 days" in home
    detail = _wait_for(
        alice,
        f"/apps/{issued.grant_id}",
        "Requests per day over the last 30 days, 1 request in all",
    )
    assert "<code>gpt-4o-mini</code>" in detail
    assert "12 in / 5 out" in detail  # the fake upstream's usage
    assert "POST chat/completions" in detail


def test_edit_limits_lowers_them_and_the_proxy_enforces_it(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice")
    form = alice.page(f"/apps/{issued.grant_id}/limits").text
    assert 'name="p0.requests_per_day"' in form
    saved = alice.post(
        f"/apps/{issued.grant_id}/limits",
        {"p0.requests_per_day": "1", "p0.monthly_spend": "3.5", "p0.daily_spend": ""},
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("notice=limits")
    with vault.session() as session:
        grant = session.get(Grant, issued.grant_id)
        assert grant is not None
        assert grant.details[0]["limits"]["requests_per_day"] == 1
        assert grant.details[0]["limits"]["monthly_spend"] == 3.5
        assert grant.details[0]["key_id"]  # untouched
        event = session.exec(
            select(SecurityEvent).where(SecurityEvent.kind == "grant_limits_changed")
        ).one()
        assert event.detail["grant_id"] == issued.grant_id
    assert "Limits saved" in alice.page(f"/apps/{issued.grant_id}?notice=limits").text
    app = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=issued.token, max_retries=0)
    app.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "1"}])
    with pytest.raises(openai.RateLimitError):
        app.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "2"}]
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("p0.requests_per_day", "1.5", "Requests per day: must be a whole number"),
        ("p0.monthly_spend", "-1", "Monthly spend (USD): must not be negative"),
        ("p0.requests_per_minute", "lots", "Requests per minute: must be a number"),
    ],
)
def test_bad_limits_are_refused_and_nothing_changes(
    vault: Vault, people: Callable[..., Visitor], field: str, value: str, message: str
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice")
    refused = alice.post(f"/apps/{issued.grant_id}/limits", {field: value})
    assert refused.status_code == 422
    assert message in refused.text
    assert f'value="{value}"' in refused.text  # what the person typed stays in the form
    with vault.session() as session:
        grant = session.get(Grant, issued.grant_id)
        assert grant is not None and grant.version == 1


def test_revoke_stops_the_app_at_once(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice", client_name="Doomed App")
    app = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=issued.token, max_retries=0)
    app.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "1"}])
    revoked = alice.post(f"/apps/{issued.grant_id}/revoke")
    assert revoked.status_code == 303
    assert "Access revoked" in alice.page("/?notice=revoked").text
    assert "Doomed App" not in alice.page("/").text
    assert "Revoked" in alice.page("/apps").text
    with pytest.raises(openai.AuthenticationError):
        app.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "2"}]
        )
    with vault.session() as session:
        event = session.exec(
            select(SecurityEvent).where(SecurityEvent.kind == "grant_revoked")
        ).one()
        assert event.detail["by"] == "person"
    again = alice.post(f"/apps/{issued.grant_id}/revoke")
    assert again.status_code == 303  # idempotent


def test_empty_state_says_what_to_do_next(people: Callable[..., Visitor]) -> None:
    home = people("alice").page("/").text
    assert "No app is connected yet" in home
    assert 'href="/keys"' in home and 'href="/device"' in home
