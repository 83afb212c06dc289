"""``key.failing`` when a provider refuses a stored key (once an hour per key), and
``grant.expiring`` a week before a grant ends (once), over real HTTP."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import openai
import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.server.api.test_flows import SECRET, add_key, chat, personal_token, sdk
from tests.server.webhooks.conftest import register
from tests.support.fake_answers import Respond
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant
from tests.support.webhook_receiver import Receiver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"housekeeping_seconds": 0.2})


def test_a_refused_key_is_reported_once(
    live_url: str, api: httpx.Client, fake_upstream: FakeUpstream, receiver: Receiver
) -> None:
    key_id = add_key(api)
    endpoint = register(api, receiver.url, ["key.failing"])
    minted = personal_token(api)
    fake_upstream.script("openai", Respond(401), Respond(401))
    for _ in range(2):
        with pytest.raises(openai.AuthenticationError):
            chat(sdk(live_url, str(minted["access_token"])))
    [delivery] = receiver.wait_for(1)
    time.sleep(0.5)
    assert len(receiver.accepted()) == 1  # the second 401 in the hour is not news
    event = delivery.verified(endpoint["secret"])
    assert event["type"] == "key.failing"
    assert event["data"] == {
        "key_id": key_id,
        "provider": "openai",
        "status": 401,
        "grant_id": minted["grant_id"],
        "app": {"name": "my script"},
    }
    assert SECRET not in delivery.body.decode()


def test_a_grant_ending_within_a_week_is_announced_once(
    vault: Vault, api: httpx.Client, receiver: Receiver, owner: tuple[str, str]
) -> None:
    endpoint = register(api, receiver.url, ["grant.expiring"])
    soon = make_grant(vault, entry("openai"), username=owner[0], expires_in=timedelta(days=3))
    make_grant(vault, entry("openai"), username=owner[0], expires_in=timedelta(days=30))
    [delivery] = receiver.wait_for(1)
    time.sleep(0.6)  # several more rounds of the worker: no second notice
    assert len(receiver.accepted()) == 1
    event = delivery.verified(endpoint["secret"])
    assert event["type"] == "grant.expiring"
    assert event["data"]["grant_id"] == soon.grant_id
    assert event["data"]["app"] == {"client_id": "https://app.example", "name": "Test App"}
    assert soon.token not in delivery.body.decode()
