"""The approval events over real HTTP: the person's decision is ``access.approved`` (there
is no grant yet: ``request_id`` only), and the grant, made when the app collects its
token, is ``grant.approved`` with its ``grant_id``, once, however often the app asks."""

from __future__ import annotations

import time

import httpx

from tests.server.api.test_flows import add_key
from tests.server.authorization.test_device import poll, start
from tests.server.webhooks.conftest import register
from tests.server.webhooks.test_signed_deliveries import payloads
from tests.support.person import Person
from tests.support.webhook_receiver import Receiver


def test_the_decision_is_access_approved_and_the_grant_is_grant_approved_once(
    live_url: str, api: httpx.Client, receiver: Receiver, owner: tuple[str, str]
) -> None:
    add_key(api)
    endpoint = register(api, receiver.url)
    with httpx.Client(base_url=live_url) as app:
        started = start(app)
        with Person(live_url, *owner) as person:
            person.approve_device(started["user_code"])
        decided = [d.verified(endpoint["secret"]) for d in receiver.wait_for(2)]
        assert [p["type"] for p in decided] == ["access.requested", "access.approved"]
        approval = decided[1]["data"]
        assert approval["grant_id"] is None and approval["reused"] is False
        assert approval["request_id"] == decided[0]["data"]["request_id"]
        assert "openai" in approval["access"]

        collected = poll(app, started["device_code"])
        assert collected.status_code == 200, collected.text
        assert poll(app, started["device_code"]).status_code == 400  # delivered once only
    got = [d.verified(endpoint["secret"]) for d in receiver.wait_for(3)]
    time.sleep(0.5)  # nothing more comes
    assert [p["type"] for p in payloads(receiver, endpoint["secret"])] == [
        "access.requested",
        "access.approved",
        "grant.approved",
    ]
    granted = got[2]["data"]
    [grant] = api.get("/grants").json()["data"]
    assert granted["grant_id"] == grant["id"]
    assert granted["request_id"] == approval["request_id"]
    assert granted["app"] == {"client_id": "okap-cli", "name": "okap CLI"}
    assert granted["flow"] == "device" and "openai" in granted["access"]
