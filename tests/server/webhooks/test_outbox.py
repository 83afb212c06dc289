"""The outbox over real HTTP: a receiver down then up gets every event in order; a
consent's request, approval and denial are events; a slow, failing or unreachable
receiver slows neither a consent nor the proxy; a receiver that keeps failing gets its
endpoint disabled, and the API says why; a URL that would reach inside is refused."""

from __future__ import annotations

import time

import httpx
import pytest

from okap_server.context import Vault
from tests.server.api.conftest import problem_of
from tests.server.api.test_flows import add_key, chat, personal_token, sdk
from tests.server.authorization.test_device import start
from tests.server.webhooks.conftest import register
from tests.support.person import Person
from tests.support.webhook_receiver import Receiver


def test_a_receiver_down_then_up_gets_every_event_in_order(
    api: httpx.Client, receiver: Receiver
) -> None:
    add_key(api)
    endpoint = register(api, receiver.url)
    receiver.status = 503
    grants = [str(personal_token(api)["grant_id"]) for _ in range(3)]
    for grant_id in grants:
        assert api.delete(f"/grants/{grant_id}").status_code == 204
    time.sleep(1.0)  # several attempts fail meanwhile
    assert receiver.hits >= 2 and receiver.accepted() == []
    log = api.get(f"/webhooks/{endpoint['id']}/deliveries").json()["data"]
    assert log[-1]["status"] == "pending" and log[-1]["attempts"] >= 1
    assert log[-1]["last_error"] == "answered HTTP 503"
    receiver.status = 200
    got = [d.verified(endpoint["secret"]) for d in receiver.wait_for(6)]
    order = [(p["type"], p["data"]["grant_id"]) for p in got]
    # In the order they happened: the three approvals, then the three revocations.
    expected = [(kind, g) for kind in ("grant.approved", "grant.revoked") for g in grants]
    assert order == expected
    log = api.get(f"/webhooks/{endpoint['id']}/deliveries").json()["data"]
    assert {d["status"] for d in log} == {"delivered"}


def test_consent_events_and_a_slow_receiver_slows_nothing(
    vault: Vault,
    live_url: str,
    api: httpx.Client,
    receiver: Receiver,
    owner: tuple[str, str],
) -> None:
    add_key(api)
    endpoint = register(api, receiver.url)
    receiver.delay = 1.5  # each delivery takes 1.5 s to answer
    started = time.monotonic()
    with httpx.Client(base_url=live_url) as app:
        first, second = start(app), start(app)
    with Person(live_url, *owner) as person:
        person.approve_device(first["user_code"])
        person.deny_device(second["user_code"])
    token = str(personal_token(api)["access_token"])
    assert chat(sdk(live_url, token)) == "Hello from the fake upstream."
    assert time.monotonic() - started < 5  # not 1.5 s per event: nobody waited for it
    got = [d.verified(endpoint["secret"]) for d in receiver.wait_for(5, timeout=30)]
    kinds = [p["type"] for p in got]
    assert kinds == [
        "access.requested",
        "access.requested",
        "access.approved",  # the decision: the app has not collected a grant yet
        "grant.denied",
        "grant.approved",  # the personal token: a grant at once
    ]
    assert got[0]["data"]["app"] == {"client_id": "okap-cli", "name": "okap CLI"}
    assert got[2]["data"]["request_id"] == got[0]["data"]["request_id"]
    assert got[3]["data"]["reason"]


def test_a_failing_endpoint_is_disabled_and_says_why(
    vault: Vault, api: httpx.Client, receiver: Receiver
) -> None:
    add_key(api)
    endpoint = register(api, receiver.url)
    receiver.status = 500
    personal_token(api)
    attempts = vault.settings.webhook_max_attempts
    deadline = time.monotonic() + 30
    while True:
        listed = api.get("/webhooks").json()["data"][0]
        if listed["disabled"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert listed["disabled"] is True
    assert f"{attempts} attempts failed" in listed["disabled_reason"]
    assert "HTTP 500" in listed["disabled_reason"]
    log = api.get(f"/webhooks/{endpoint['id']}/deliveries").json()["data"]
    assert log[0]["status"] == "failed" and log[0]["attempts"] == attempts
    assert api.post(f"/webhooks/{endpoint['id']}/test").status_code == 409


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.1.2.3/hook", "private address"),
        ("https://[fd00::1]/hook", "private address"),
        ("https://[::ffff:192.168.1.1]/hook", "private address"),
        ("ftp://127.0.0.1/hook", "must be https"),
        ("https://127.0.0.1/" + "a" * 2100, "longer than 2048"),
        ("https://user:pw@127.0.0.1/hook", "user name or password"),
        ("https://nowhere.invalid/hook", "does not resolve"),
    ],
)
def test_a_url_that_reaches_inside_is_refused(api: httpx.Client, url: str, why: str) -> None:
    answer = api.post("/webhooks", json={"url": url})
    assert answer.status_code == 422
    assert why in problem_of(answer)["detail"]
    assert api.get("/webhooks").json()["data"] == []


def test_endpoints_are_listed_without_secrets_and_removed(
    api: httpx.Client, receiver: Receiver
) -> None:
    endpoint = register(api, receiver.url, ["grant.revoked"])
    listed = api.get("/webhooks").json()["data"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and listed[0]["events"] == [
        "grant.revoked"
    ]
    assert endpoint["secret"] not in api.get("/webhooks").text
    bad = api.post("/webhooks", json={"url": receiver.url, "events": ["grant.exploded"]})
    assert bad.status_code == 422 and "grant.exploded" in problem_of(bad)["detail"]
    assert api.delete(f"/webhooks/{endpoint['id']}").status_code == 204
    assert api.delete(f"/webhooks/{endpoint['id']}").status_code == 404
    assert api.get("/webhooks").json()["data"] == []


def test_a_redirect_is_never_followed(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = register(api, receiver.url)
    receiver.status = 307
    assert api.post(f"/webhooks/{endpoint['id']}/test").status_code == 202
    deadline = time.monotonic() + 10
    while True:
        [entry] = api.get(f"/webhooks/{endpoint['id']}/deliveries").json()["data"]
        if entry["attempts"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert entry["last_status"] == 307
    assert entry["last_error"] == "answered a redirect (never followed)"
    assert receiver.hits >= 1 and receiver.accepted() == []
