"""The dashboard's lifecycle levers over real HTTP, as a person uses them: Regenerate token
(the new token shown once, the old refused), Replace secret (the app keeps working, the
upstream gets the new key), and Remove key moving its apps to another key first."""

from __future__ import annotations

import re
from collections.abc import Callable

import openai
import pytest

from okap_server.authorization.models import Grant
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.server.dashboard.conftest import Visitor
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import FAKE_KEYS, entry, make_grant, revoke

NEW_SECRET = "sk-proj-DASHROTATEDkey0123456789abcdefghXYZ"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A 60 s grant cache: every change below must reach the proxy by invalidation."""
    return settings.model_copy(update={"proxy_grant_cache_seconds": 60})


HI = [{"role": "user", "content": "hi"}]


def chat(live_url: str, token: str) -> str | None:
    client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    return answer.choices[0].message.content


def key_id_of(alice: Visitor, label: str) -> str:
    page = alice.page("/keys").text
    found = re.search(
        r'id="key-([^"]+)"[^<]*<div class="key-main">\s*<p class="key-title">'
        rf"<strong>[^<]+</strong> · {re.escape(label)}\b",
        page,
    )
    assert found, f"no key labelled {label}"
    return found.group(1)


def test_regenerate_token_shows_the_new_token_once_and_the_old_one_stops(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice", client_name="Writer App")
    assert chat(live_url, issued.token)
    detail = alice.page(f"/apps/{issued.grant_id}").text
    assert f'href="/apps/{issued.grant_id}/token">Regenerate token' in detail
    question = alice.page(f"/apps/{issued.grant_id}/token").text
    assert "Regenerate the token of" in question and "Keep the current token" in question

    shown = alice.post(f"/apps/{issued.grant_id}/token")
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    token = re.search(r'id="new-token" class="token" value="(okap_[0-9A-Za-z]+)"', shown.text)
    assert token, shown.text
    assert "Token regenerated. The old token no longer works." in shown.text
    with pytest.raises(openai.AuthenticationError):
        chat(live_url, issued.token)
    assert chat(live_url, token.group(1)) == "Hello from the fake upstream."
    assert token.group(1) not in alice.page(f"/apps/{issued.grant_id}").text  # shown once
    activity = alice.page("/activity?period=all").text
    assert (
        "Token regenerated (the old one was revoked)" in activity
        and "via the dashboard" in activity
    )


def test_a_revoked_app_gets_no_new_token(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice")
    revoke(vault, issued.grant_id)
    refused = alice.post(f"/apps/{issued.grant_id}/token")
    assert refused.status_code == 409 and "was revoked" in refused.text
    assert "okap_" not in refused.text.split("</header>", 1)[-1]
    bob = people("bob")
    assert bob.post(f"/apps/{issued.grant_id}/token").status_code == 404


def test_replace_secret_keeps_the_app_working_with_the_new_key(
    vault: Vault, live_url: str, people: Callable[..., Visitor], fake_upstream: FakeUpstream
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice", client_name="Writer App")
    assert chat(live_url, issued.token)
    assert (
        fake_upstream.requests_for("openai")[-1]
        .headers["authorization"]
        .endswith(FAKE_KEYS["openai"])
    )
    key_id = key_id_of(alice, "test key")
    assert f'href="/keys/{key_id}/secret">Replace secret' in alice.page("/keys").text
    form = alice.page(f"/keys/{key_id}/secret").text
    assert "1 connected app uses this key" in form and "Writer App" in form

    misfiled = alice.post(f"/keys/{key_id}/secret", {"secret": "sk-ant-api03-0123456789abcdef"})
    assert misfiled.status_code == 422 and "looks like an Anthropic key" in misfiled.text
    assert "sk-ant-api03-0123456789abcdef" not in misfiled.text
    assert chat(live_url, issued.token)
    assert (
        fake_upstream.requests_for("openai")[-1]
        .headers["authorization"]
        .endswith(FAKE_KEYS["openai"])
    )

    replaced = alice.post(f"/keys/{key_id}/secret", {"secret": NEW_SECRET})
    assert replaced.status_code == 303 and replaced.headers["location"].endswith("key_replaced")
    page = alice.page("/keys?notice=key_replaced").text
    assert "Key replaced in place." in page and "sk-...hXYZ" in page and NEW_SECRET not in page
    assert chat(live_url, issued.token) == "Hello from the fake upstream."
    sent = fake_upstream.requests_for("openai")[-1].headers["authorization"]
    assert sent == f"Bearer {NEW_SECRET}"


def test_removing_a_key_moves_its_apps_to_the_chosen_key(
    vault: Vault, live_url: str, people: Callable[..., Visitor], fake_upstream: FakeUpstream
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice", client_name="Writer App")
    alice.post("/keys", {"provider": "openai", "label": "spare", "secret": NEW_SECRET})
    old, spare = key_id_of(alice, "test key"), key_id_of(alice, "spare")
    question = alice.page(f"/keys/{old}/remove").text
    assert f'name="move_to" value="{spare}" checked' in question
    assert "Don't move them: their requests will fail" in question

    removed = alice.post(f"/keys/{old}/remove", {"move_to": spare})
    assert removed.status_code == 303 and removed.headers["location"].endswith("key_moved")
    assert "Used by: Writer App" in alice.page("/keys").text
    assert chat(live_url, issued.token) == "Hello from the fake upstream."
    assert fake_upstream.requests_for("openai")[-1].headers["authorization"].endswith(NEW_SECRET)


def test_make_default_reaches_the_apps_that_follow_the_default(
    vault: Vault, live_url: str, people: Callable[..., Visitor], fake_upstream: FakeUpstream
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice")
    with vault.session() as session:  # an entry with no key_id uses the provider's default
        grant = session.get(Grant, issued.grant_id)
        assert grant is not None
        grant.details = [{k: v for k, v in e.items() if k != "key_id"} for e in grant.details]
        session.add(grant)
        session.commit()
    assert chat(live_url, issued.token)
    assert (
        fake_upstream.requests_for("openai")[-1]
        .headers["authorization"]
        .endswith(FAKE_KEYS["openai"])
    )
    alice.post("/keys", {"provider": "openai", "label": "spare", "secret": NEW_SECRET})
    assert alice.post(f"/keys/{key_id_of(alice, 'spare')}/default").status_code == 303
    assert chat(live_url, issued.token) == "Hello from the fake upstream."
    assert fake_upstream.requests_for("openai")[-1].headers["authorization"].endswith(NEW_SECRET)
