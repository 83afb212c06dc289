"""Provider keys on the dashboard: add (never echoed), list by hint, test, default, remove."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import select

from okap_server.audit.models import SecurityEvent
from okap_server.context import Vault
from okap_server.vault.models import ProviderKey
from tests.server.dashboard.conftest import Visitor
from tests.support.fake_upstream import FakeUpstream, Respond
from tests.support.grants import entry, make_grant

SECRET = "sk-ant-api03-DASHBOARDkey0123456789abcdefWXYZ"


@pytest.fixture
def backend() -> str:
    return "sqlite"


def test_add_a_key_the_secret_is_stored_encrypted_and_never_shown(
    vault: Vault, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    added = alice.post("/keys", {"provider": "anthropic", "label": "work", "secret": SECRET})
    assert added.status_code == 303
    page = alice.page("/keys?notice=key_added").text
    assert "Key stored, encrypted" in page
    assert "sk-...WXYZ" in page and "Anthropic" in page and "work" in page
    assert SECRET not in page
    with vault.session() as session:
        row = session.exec(select(ProviderKey)).one()
        assert SECRET.encode() not in row.ciphertext and row.is_default
        assert vault.keys.reveal(row) == SECRET
        event = session.exec(select(SecurityEvent).where(SecurityEvent.kind == "key_added")).one()
        assert SECRET not in str(event.detail)


def test_a_refused_key_is_not_echoed_back(people: Callable[..., Visitor]) -> None:
    alice = people("alice")
    alice.post("/keys", {"provider": "openai", "label": "same", "secret": "sk-first-0123456789"})
    refused = alice.post(
        "/keys", {"provider": "openai", "label": "same", "secret": "sk-second-0123456789"}
    )
    assert refused.status_code == 422
    assert (
        "There is already a key labelled &#39;same&#39; for openai" in refused.text
        and "Nothing was stored" in refused.text
    )
    assert "sk-second-0123456789" not in refused.text
    assert 'value="same"' in refused.text  # the label is kept, the secret is not
    bad = alice.post("/keys", {"provider": "nope", "label": "x", "secret": "sk-0123456789abc"})
    assert bad.status_code == 422 and "Choose a provider" in bad.text


def test_testing_a_key_calls_the_models_list_upstream(
    people: Callable[..., Visitor], fake_upstream: FakeUpstream
) -> None:
    alice = people("alice")
    alice.post("/keys", {"provider": "anthropic", "label": "work", "secret": SECRET})
    key_id = alice.page("/keys").text.split('id="key-')[1].split('"')[0]
    works = alice.post(f"/keys/{key_id}/test")
    assert works.status_code == 200
    assert "work works: Anthropic answered, 1 model available." in works.text
    probe = fake_upstream.requests_for("anthropic")[-1]
    assert probe.path == "/anthropic/v1/models" and probe.headers["x-api-key"] == SECRET
    fake_upstream.script("anthropic", Respond(401))
    refused = alice.post(f"/keys/{key_id}/test")
    assert "the provider refused this key (HTTP 401)" in refused.text
    assert SECRET not in refused.text


def test_removing_a_key_warns_about_the_apps_that_depend_on_it(
    vault: Vault, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    make_grant(vault, entry("openai"), username="alice", client_name="Writer App")
    key_id = alice.page("/keys").text.split('id="key-')[1].split('"')[0]
    assert "Used by: Writer App" in alice.page("/keys").text
    confirm = alice.page(f"/keys/{key_id}/remove").text
    assert "1 connected app depends on this key" in confirm and "Writer App" in confirm
    removed = alice.post(f"/keys/{key_id}/remove")
    assert removed.status_code == 303
    assert "No key yet" in alice.page("/keys").text
    with vault.session() as session:
        assert session.exec(select(ProviderKey)).first() is None
        event = session.exec(select(SecurityEvent).where(SecurityEvent.kind == "key_removed")).one()
        assert len(event.detail["grants"]) == 1


def test_make_another_key_the_default(vault: Vault, people: Callable[..., Visitor]) -> None:
    alice = people("alice")
    alice.post("/keys", {"provider": "openai", "label": "one", "secret": "sk-one-0123456789"})
    alice.post("/keys", {"provider": "openai", "label": "two", "secret": "sk-two-0123456789"})
    with vault.session() as session:
        two = session.exec(select(ProviderKey).where(ProviderKey.label == "two")).one()
        assert not two.is_default
    assert alice.post(f"/keys/{two.id}/default").status_code == 303
    with vault.session() as session:
        rows = {k.label: k.is_default for k in session.exec(select(ProviderKey))}
    assert rows == {"one": False, "two": True}
