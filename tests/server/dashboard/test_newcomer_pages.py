"""What issue 18 found on the dashboard, over real HTTP: a key's last use, a spent budget,
the revoke question, the spend total, the capped-tokens header, provider names."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai
import pytest

from okap_server.context import Vault
from okap_server.grants.models import Grant
from tests.server.dashboard.conftest import Visitor
from tests.support.grants import entry, make_grant

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def backend() -> str:
    return "sqlite"  # pages over one back end; settlement runs on both in tests/server/proxy


def _wait_for(visitor: Visitor, path: str, text: str) -> str:
    for _ in range(100):
        page = visitor.page(path).text
        if text in page:
            return page
        time.sleep(0.05)
    raise AssertionError(f"{path} never showed {text!r}")


def _client(live_url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)


def test_a_key_shows_when_an_app_last_used_it(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice")
    assert "last used never" in alice.page("/keys").text
    _client(live_url, issued.token).chat.completions.create(model="gpt-4o-mini", messages=HI)
    keys = _wait_for(alice, "/keys", "last used just now")
    assert "last used never" not in keys


def test_a_spent_budget_says_the_app_is_refused(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice", client_name="Spender")
    app = _client(live_url, issued.token)
    app.chat.completions.create(model="gpt-4o-mini", messages=HI)
    _wait_for(alice, "/", "1 request this month")
    assert "Refusing requests" not in alice.page("/").text
    lowered = alice.post(f"/apps/{issued.grant_id}/limits", {"p0.monthly_spend": "0.000001"})
    assert lowered.status_code == 303
    card = alice.page("/").text
    assert "Refusing requests: monthly limit reached" in card
    with pytest.raises(openai.RateLimitError):  # and the proxy does refuse it
        app.chat.completions.create(model="gpt-4o-mini", messages=HI)
    detail = alice.page(f"/apps/{issued.grant_id}").text
    assert "Refusing requests: monthly limit reached" in detail


def test_a_request_limit_reached_today_says_so(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai", limits={"requests_per_day": 1}), username="alice")
    _client(live_url, issued.token).chat.completions.create(model="gpt-4o-mini", messages=HI)
    _wait_for(alice, "/", "Refusing requests: daily request limit reached")


def test_revoke_asks_first(vault: Vault, live_url: str, people: Callable[..., Visitor]) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice", client_name="Careful App")
    home = alice.page("/").text
    assert f'href="/apps/{issued.grant_id}/revoke"' in home
    assert f'action="/apps/{issued.grant_id}/revoke"' not in home  # no one-click revoke
    question = alice.page(f"/apps/{issued.grant_id}/revoke")
    assert question.status_code == 200
    assert 'Revoke <span class="app-name">Careful App</span>?' in question.text
    assert "This cannot be undone" in question.text and "Keep it" in question.text
    with vault.session() as session:
        grant = session.get(Grant, issued.grant_id)
        assert grant is not None and grant.revoked_at is None  # asking revoked nothing
    assert alice.post(f"/apps/{issued.grant_id}/revoke").status_code == 303
    assert "already ended (revoked)" in alice.page(f"/apps/{issued.grant_id}/revoke").text
    assert alice.page("/apps/grt_nobody/revoke").status_code == 404


def test_apps_shows_the_spend_of_all_apps(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    first = make_grant(vault, entry("openai"), username="alice", client_name="One")
    second = make_grant(vault, entry("openai"), username="alice", client_name="Two")
    assert "$0.00</strong> spent this month by all your apps" in alice.page("/").text
    for issued in (first, second):
        _client(live_url, issued.token).chat.completions.create(model="gpt-4o-mini", messages=HI)
    home = _wait_for(alice, "/", "2 requests this month")
    assert "&lt;$0.01</strong> spent this month by all your apps" in home


def test_a_cap_the_vault_sets_is_in_a_header(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    issued = make_grant(vault, entry("openai", limits={"tokens_per_request": 300}))
    chat = _client(live_url, issued.token).chat.completions
    capped = chat.with_raw_response.create(model="gpt-4o-mini", messages=HI, max_tokens=5000)
    assert capped.headers["x-okap-max-tokens-capped"] == "300"
    own = chat.with_raw_response.create(model="gpt-4o-mini", messages=HI, max_tokens=100)
    assert "x-okap-max-tokens-capped" not in own.headers  # the app's own, smaller cap
    unlimited = make_grant(vault, entry("openai"), client_name="Free")
    free = _client(live_url, unlimited.token).chat.completions.with_raw_response
    assert "x-okap-max-tokens-capped" not in free.create(model="gpt-4o-mini", messages=HI).headers


def test_activity_names_providers_as_people_know_them(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice", client_name="Summariser")
    _client(live_url, issued.token).chat.completions.create(model="gpt-4o-mini", messages=HI)
    page = _wait_for(alice, "/activity", "<code>gpt-4o-mini</code>")
    assert "<td>OpenAI · <code>gpt-4o-mini</code></td>" in page
    assert '<option value="openai">OpenAI</option>' in page
    assert "<td>openai" not in page
