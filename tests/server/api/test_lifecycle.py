"""Issue 19's lifecycle without re-consent, over real HTTP with the real openai SDK: a
regenerated app token (the old one refused at its next request, on this replica and on
another, the new one working, the usage kept) and a provider key replaced in place (the
upstream sees the new secret on the grant's next call, with no new consent).

The grant cache lives 60 s here (``conftest.py``), so every refusal below comes from the
invalidation path, not from a cache running out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai
import pytest
from sqlmodel import select

from okap_server.app import create_app
from okap_server.context import Vault, open_vault
from okap_server.grants.models import Grant
from tests.server.api.conftest import problem_of
from tests.server.proxy.records import wait_for_logs
from tests.support.delegation import child_token, exchange, openai_entry
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import FAKE_KEYS, entry, make_grant, revoke
from tests.support.live import free_port, serve_app

NEW_SECRET = "sk-proj-ROTATEDkey0123456789abcdefghijklXYZ"


def sdk(base: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1/openai", api_key=token, max_retries=0)


def chat(client: openai.OpenAI) -> str | None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    return answer.choices[0].message.content


def requests_today(base: str, token: str) -> httpx.Response:
    return httpx.get(f"{base}/okap/usage", headers={"Authorization": f"Bearer {token}"})


@contextmanager
def second_replica(vault: Vault) -> Iterator[str]:
    """Another vault process on the same database, with its own 60 s grant cache, told of
    changes only through the PostgreSQL notify channel."""
    settings = vault.settings.model_copy(update={"port": free_port()})
    other = open_vault(settings)
    app = create_app(other)
    try:
        with serve_app(app, settings.port) as url:
            channel = app.state.proxy.runtime.channel
            assert channel is not None and channel.listening.wait(10)
            yield url
    finally:
        other.dispose()


def test_a_regenerated_token_replaces_the_old_one_and_keeps_the_usage(
    vault: Vault, live_url: str, api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    issued = make_grant(vault, entry("openai", limits={"requests_per_day": 50}), username="alice")
    old = sdk(live_url, issued.token)
    assert chat(old) == "Hello from the fake upstream."
    wait_for_logs(vault, 1)

    answer = api.post(f"/grants/{issued.grant_id}/token")
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    token = body["access_token"]
    assert token.startswith("okap_") and token != issued.token
    assert body["grant_id"] == issued.grant_id and body["token_type"] == "Bearer"
    assert body["authorization_details"][0]["base_url"] == f"{live_url}/v1/openai"
    assert "key_id" not in body["authorization_details"][0]

    with pytest.raises(openai.AuthenticationError):
        chat(old)  # the very next request, despite the 60 s grant cache
    assert requests_today(live_url, issued.token).status_code == 401
    assert chat(sdk(live_url, token)) == "Hello from the fake upstream."
    wait_for_logs(vault, 2)
    day = requests_today(live_url, token).json()["usage"]["openai"]["requests"]["day"]
    assert day == {"used": 2, "limit": 50, "remaining": 48}  # the first call still counts

    read = api.get(f"/grants/{issued.grant_id}").json()
    assert read["active"] and read["authorization_details"][0]["limits"]["requests_per_day"] == 50
    with vault.session() as session:
        assert len(session.exec(select(Grant)).all()) == 1  # the same grant, no new consent
    events = api.get("/events", params={"kind": "token_regenerated"}).json()["data"]
    assert [e["detail"]["grant_id"] for e in events] == [issued.grant_id]
    assert token not in api.get("/events").text and issued.token not in api.get("/events").text


def test_a_revoked_or_foreign_grant_gets_no_new_token(
    vault: Vault, live_url: str, api: httpx.Client
) -> None:
    revoked = make_grant(vault, entry("openai"), username="alice")
    revoke(vault, revoked.grant_id)
    refused = api.post(f"/grants/{revoked.grant_id}/token")
    assert refused.status_code == 409 and "revoked" in problem_of(refused)["detail"]
    foreign = make_grant(vault, entry("openai"), username="bob")
    assert problem_of(api.post(f"/grants/{foreign.grant_id}/token"))["status"] == 404
    assert chat(sdk(live_url, foreign.token)) == "Hello from the fake upstream."


def test_the_old_token_is_refused_at_once_on_another_replica(
    backend: str, vault: Vault, live_url: str, api: httpx.Client
) -> None:
    if backend != "postgres":
        pytest.skip("a SQLite vault is one process: there is no other replica")
    issued = make_grant(vault, entry("openai"), username="alice")
    with second_replica(vault) as other:
        there = sdk(other, issued.token)
        assert chat(there) == "Hello from the fake upstream."  # now in that replica's cache
        token = api.post(f"/grants/{issued.grant_id}/token").json()["access_token"]
        refused = False
        for _ in range(50):  # the notice crosses the database: allow it a moment
            try:
                chat(there)
            except openai.AuthenticationError:
                refused = True
                break
        assert refused, "the other replica kept serving the old token"
        assert chat(sdk(other, token)) == "Hello from the fake upstream."


def test_a_replaced_key_reaches_the_upstream_on_the_next_call_with_no_new_consent(
    vault: Vault, live_url: str, api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    issued = make_grant(vault, entry("openai"), username="alice")
    app = sdk(live_url, issued.token)
    assert chat(app) == "Hello from the fake upstream."
    sent = fake_upstream.requests_for("openai")[-1].headers["authorization"]
    assert sent == f"Bearer {FAKE_KEYS['openai']}"
    key_id = api.get("/provider-keys").json()["data"][0]["id"]

    replaced = api.patch(f"/provider-keys/{key_id}", json={"secret": NEW_SECRET})
    assert replaced.status_code == 200 and NEW_SECRET not in replaced.text
    assert replaced.json()["id"] == key_id and replaced.json()["hint"].endswith("lXYZ")

    assert chat(app) == "Hello from the fake upstream."  # the same token, no consent
    sent = fake_upstream.requests_for("openai")[-1].headers["authorization"]
    assert sent == f"Bearer {NEW_SECRET}"
    with vault.session() as session:
        assert len(session.exec(select(Grant)).all()) == 1
    changed = api.get("/events", params={"kind": "key_changed"}).json()["data"][0]["detail"]
    assert changed["changed"] == ["secret"] and NEW_SECRET not in str(changed)


def test_a_key_is_moved_only_to_another_key_of_its_provider(
    vault: Vault, live_url: str, api: httpx.Client
) -> None:
    issued = make_grant(vault, entry("openai"), entry("anthropic"), username="alice")
    keys = {k["provider"]: k["id"] for k in api.get("/provider-keys").json()["data"]}
    wrong = api.delete(f"/provider-keys/{keys['openai']}", params={"move_to": keys["anthropic"]})
    assert wrong.status_code == 422 and "move_to" in problem_of(wrong)["detail"]
    assert chat(sdk(live_url, issued.token)) == "Hello from the fake upstream."


def test_a_replaced_key_reaches_the_upstream_from_another_replica_at_once(
    backend: str, vault: Vault, live_url: str, api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    if backend != "postgres":
        pytest.skip("a SQLite vault is one process: there is no other replica")
    issued = make_grant(vault, entry("openai"), username="alice")
    with second_replica(vault) as other:
        there = sdk(other, issued.token)
        assert chat(there) == "Hello from the fake upstream."  # cached there with the old key
        key_id = api.get("/provider-keys").json()["data"][0]["id"]
        assert api.patch(f"/provider-keys/{key_id}", json={"secret": NEW_SECRET}).is_success
        for _ in range(50):  # the notice crosses the database: allow it a moment
            chat(there)
            sent = fake_upstream.requests_for("openai")[-1].headers["authorization"]
            if sent == f"Bearer {NEW_SECRET}":
                break
        assert sent == f"Bearer {NEW_SECRET}", "the other replica kept sending the old key"


def test_a_regenerated_token_takes_the_tokens_delegated_from_the_old_one_with_it(
    vault: Vault, live_url: str, api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    """A leaked token may have been exchanged (RFC 8693) before the person noticed: the
    leaker's children must die with the regeneration that was meant to cut them off."""
    issued = make_grant(vault, entry("openai"), username="alice")
    child = child_token(live_url, issued.token, [openai_entry()])
    assert chat(sdk(live_url, child)) == "Hello from the fake upstream."

    answer = api.post(f"/grants/{issued.grant_id}/token")
    assert answer.status_code == 201, answer.text
    token = answer.json()["access_token"]

    with pytest.raises(openai.AuthenticationError):
        chat(sdk(live_url, child))
    again = exchange(live_url, child, [openai_entry()])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert chat(sdk(live_url, token)) == "Hello from the fake upstream."  # the grant lives on
