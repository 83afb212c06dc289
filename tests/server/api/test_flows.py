"""What the management API does, over real HTTP: keys stored and never echoed, a personal
token that works with the real openai SDK, narrowing with ETag/If-Match, revocation that
cuts the app off at its very next request, and a key that cannot be removed from under
its grants."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest
from sqlmodel import select

from okap_server.accounts.models import Account
from okap_server.context import Vault
from okap_server.grants.ceilings import set_account_ceilings, set_key_ceiling
from okap_server.vault.models import ProviderKey
from tests.server.api.conftest import problem_of
from tests.server.proxy.records import wait_for_logs
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant
from tests.support.person import Person

SECRET = "sk-proj-APIADDEDkey0123456789abcdefghijXYZ"
OTHER = "sk-proj-APIREPLACEDkey0123456789abcdefgXYZ"


def add_key(api: httpx.Client, label: str = "main", secret: str = SECRET) -> str:
    added = api.post(
        "/provider-keys", json={"provider": "openai", "label": label, "secret": secret}
    )
    assert added.status_code == 201, added.text
    assert secret not in added.text and added.json()["hint"].endswith(secret[-4:])
    return str(added.json()["id"])


def personal_token(api: httpx.Client, **limits: float) -> dict[str, object]:
    minted = api.post(
        "/tokens",
        json={
            "name": "my script",
            "authorization_details": [
                {"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}
                | ({"limits": limits} if limits else {})
            ],
        },
    )
    assert minted.status_code == 201, minted.text
    assert minted.headers["cache-control"] == "no-store"
    body: dict[str, object] = minted.json()
    return body


def sdk(live_url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)


def chat(client: openai.OpenAI) -> str | None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    return answer.choices[0].message.content


def test_a_personal_token_works_and_revoking_it_cuts_it_off(
    vault: Vault, live_url: str, api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    add_key(api)
    minted = personal_token(api)
    token = str(minted["access_token"])
    assert token.startswith("okap_") and minted["base_url"] == f"{live_url}/v1"
    details = minted["authorization_details"]
    assert isinstance(details, list) and details[0]["models"] == ["gpt-4o-mini"]
    assert details[0]["limits"]["daily_spend"] == vault.settings.default_limits.daily_spend
    client = sdk(live_url, token)
    assert chat(client) == "Hello from the fake upstream."
    assert SECRET in fake_upstream.requests_for("openai")[0].headers["authorization"]

    grants = api.get("/grants", params={"provider": "openai", "active": True}).json()
    assert [g["id"] for g in grants["data"]] == [minted["grant_id"]] and grants["next"] is None
    assert api.delete(f"/grants/{minted['grant_id']}").status_code == 204
    with pytest.raises(openai.AuthenticationError):
        chat(client)  # the very next request, despite the long grant cache
    assert api.get("/grants", params={"active": True}).json()["data"] == []
    kinds = [e["kind"] for e in api.get("/events").json()["data"]]
    assert "grant_revoked" in kinds and "grant_approved" in kinds and "key_added" in kinds


def test_a_key_is_never_echoed(
    vault: Vault, live_url: str, api: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key_id = add_key(api)
    listed = api.get("/provider-keys")
    assert SECRET not in listed.text and listed.json()["data"][0]["id"] == key_id
    clash = api.post(
        "/provider-keys", json={"provider": "openai", "label": "main", "secret": SECRET}
    )
    assert clash.status_code == 422 and SECRET not in clash.text
    unknown = api.post(
        "/provider-keys", json={"provider": "openai", "label": "x", "secret": SECRET, "extra": 1}
    )
    assert problem_of(unknown)["detail"].startswith("extra: unknown field")
    assert SECRET not in unknown.text
    bad = api.post("/provider-keys", json={"provider": "nope", "label": "x", "secret": SECRET})
    assert bad.status_code == 422 and SECRET not in bad.text
    replaced = api.patch(f"/provider-keys/{key_id}", json={"secret": OTHER, "label": "renamed"})
    assert replaced.status_code == 200 and OTHER not in replaced.text
    assert replaced.json()["label"] == "renamed" and replaced.json()["hint"].endswith(OTHER[-4:])
    tested = api.post(f"/provider-keys/{key_id}/test")
    assert tested.status_code == 200 and tested.json()["ok"] and OTHER not in tested.text
    events = api.get("/events").text
    assert SECRET not in events and OTHER not in events
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert all(SECRET not in r.getMessage() and OTHER not in r.getMessage() for r in server)


def test_narrowing_needs_the_current_etag(vault: Vault, live_url: str, api: httpx.Client) -> None:
    add_key(api)
    grant_id = personal_token(api)["grant_id"]
    read = api.get(f"/grants/{grant_id}")
    etag = read.headers["etag"]
    change = {"providers": {"openai": {"limits": {"daily_spend": 0.5}}}}
    assert problem_of(api.patch(f"/grants/{grant_id}", json=change)).get("status") == 428
    narrowed = api.patch(f"/grants/{grant_id}", json=change, headers={"If-Match": etag})
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["authorization_details"][0]["limits"]["daily_spend"] == 0.5
    assert narrowed.headers["etag"] != etag
    stale = api.patch(f"/grants/{grant_id}", json=change, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert problem_of(stale)["type"] == "urn:okap:problem:precondition-failed"
    fresh = narrowed.headers["etag"]
    wider = {"providers": {"openai": {"limits": {"daily_spend": 5}}}}
    refused = api.patch(f"/grants/{grant_id}", json=wider, headers={"If-Match": fresh})
    assert refused.status_code == 422 and "lowered" in problem_of(refused)["detail"]
    more_models = {"providers": {"openai": {"models": ["gpt-4o"]}}}
    refused = api.patch(f"/grants/{grant_id}", json=more_models, headers={"If-Match": fresh})
    assert refused.status_code == 422


def test_a_key_in_use_is_moved_before_it_goes(
    vault: Vault, live_url: str, api: httpx.Client
) -> None:
    first = add_key(api)
    token = str(personal_token(api)["access_token"])
    second = add_key(api, "spare", OTHER)
    refused = api.delete(f"/provider-keys/{first}")
    assert refused.status_code == 409 and problem_of(refused)["grants"]
    assert api.delete(f"/provider-keys/{first}", params={"move_to": second}).status_code == 204
    assert chat(sdk(live_url, token)) == "Hello from the fake upstream."
    assert [k["id"] for k in api.get("/provider-keys").json()["data"]] == [second]


def test_usage_and_accounts(vault: Vault, live_url: str, api: httpx.Client) -> None:
    add_key(api)
    token = str(personal_token(api)["access_token"])
    chat(sdk(live_url, token))
    assert len(wait_for_logs(vault, 1)) == 1
    usage = api.get("/usage", params={"from": "2000-01-01T00:00:00Z"})
    assert usage.status_code == 200, usage.text
    assert any(r["model"] == "gpt-4o-mini" and r["requests"] == 1 for r in usage.json()["data"])
    requests = api.get("/events", params={"kind": "proxy_request", "limit": 1}).json()
    assert requests["data"][0]["detail"]["model"] == "gpt-4o-mini" and requests["next"] is None
    assert token not in api.get("/events", params={"kind": "proxy_request"}).text
    mine = api.get("/me/usage").json()
    assert mine["totals"]["requests"] >= 1 and mine["grants"]
    added = api.post("/accounts", json={"username": "dave", "password": "a long passphrase 42"})
    assert added.status_code == 201, added.text
    disabled = api.patch(f"/accounts/{added.json()['id']}", json={"disabled": True})
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    listed = {a["username"]: a for a in api.get("/accounts").json()["data"]}
    assert listed["dave"]["disabled"] and "a long passphrase" not in api.get("/accounts").text


def test_revoking_an_apps_grant_by_api_cuts_the_app_off(
    vault: Vault, live_url: str, api: httpx.Client, fake_upstream: FakeUpstream
) -> None:
    issued = make_grant(vault, entry("openai"), username="alice")
    client = sdk(live_url, issued.token)
    assert chat(client) == "Hello from the fake upstream."
    assert api.delete(f"/grants/{issued.grant_id}").status_code == 204
    with pytest.raises(openai.AuthenticationError):
        chat(client)
    assert api.delete(f"/grants/{issued.grant_id}").status_code == 204  # idempotent
    # The dashboard shows the personal token and the revoked app alike.
    add_key(api, "dash")
    personal_token(api)
    person = Person(vault.settings.effective_page_url, "alice", "correct horse battery staple")
    page = person.open("/apps")
    assert page.status_code == 200 and "my script" in page.text
    person.close()


def test_cursor_paging(vault: Vault, live_url: str, api: httpx.Client) -> None:
    add_key(api)
    made = [personal_token(api)["grant_id"] for _ in range(3)]
    for resource in ("/grants", "/events"):
        whole = [item["id"] for item in api.get(resource).json()["data"]]
        paged: list[str] = []
        cursor = None
        while True:
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = api.get(resource, params=params).json()
            paged += [item["id"] for item in page["data"]]
            cursor = page["next"]
            if cursor is None:
                break
        assert paged == whole and len(set(paged)) == len(paged), resource
    assert sorted(made) == sorted(g["id"] for g in api.get("/grants").json()["data"])
    bad = api.get("/grants", params={"cursor": "not-a-cursor!"})
    assert bad.status_code == 400 and problem_of(bad)["type"] == "urn:okap:problem:bad-request"


def test_me_usage_includes_every_ceiling_and_its_use(
    vault: Vault, live_url: str, api: httpx.Client
) -> None:
    key_id = add_key(api)
    with vault.session() as session:
        alice = session.exec(select(Account).where(Account.username == "alice")).one()
        set_account_ceilings(session, alice, daily="", weekly="", monthly="10")
        set_key_ceiling(session, session.get(ProviderKey, key_id), "4")
        session.commit()
    before = api.get("/me/usage").json()["ceilings"]
    assert before["account"]["month"] == {"used": 0.0, "limit": 10.0, "remaining": 10.0}
    assert before["account"]["day"]["limit"] is None
    assert before["keys"][key_id]["month"]["limit"] == 4.0
    assert before["keys"][key_id]["provider"] == "openai"

    chat(sdk(live_url, str(personal_token(api)["access_token"])))
    assert len(wait_for_logs(vault, 1)) == 1
    after = api.get("/me/usage").json()["ceilings"]
    used = after["account"]["month"]["used"]
    assert used > 0 and after["keys"][key_id]["month"]["used"] == used
    assert after["account"]["month"]["remaining"] == pytest.approx(10.0 - used)
