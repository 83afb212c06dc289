"""GET /okap/usage: what a token has used and has left."""

from __future__ import annotations

import httpx

from okap_server.context import Vault
from okap_server.grants.models import Grant
from okap_server.grants.usage import usage_report
from tests.server.proxy.records import wait_until_settled
from tests.server.proxy.test_sdks import openai_client
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import entry, make_grant, revoke


def test_usage_reports_spend_and_requests_left(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=1000, output=1000)  # $0.00075
    grant = make_grant(
        vault,
        entry(
            "openai",
            limits={"daily_spend": 0.01, "requests_per_minute": 10, "requests_per_day": 100},
        ),
        entry("gemini"),
    )
    client = openai_client(live_url, grant.token)
    for _ in range(2):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    wait_until_settled(vault)
    answer = httpx.get(f"{live_url}/okap/usage", headers={"authorization": f"Bearer {grant.token}"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["active"] is True and body["grant_id"] == grant.grant_id
    assert all("key_id" not in item for item in body["authorization_details"])
    assert body["authorization_details"][0]["base_url"] == f"{live_url}/v1/openai"
    openai_usage = body["usage"]["openai"]
    assert openai_usage["spend"]["day"] == {"used": 0.0015, "limit": 0.01, "remaining": 0.0085}
    assert openai_usage["spend"]["total"]["limit"] is None
    assert openai_usage["requests"]["minute"] == {"used": 2, "limit": 10, "remaining": 8}
    assert openai_usage["requests"]["day"] == {"used": 2, "limit": 100, "remaining": 98}
    assert body["usage"]["gemini"]["spend"]["day"]["used"] == 0.0

    with vault.session() as session:
        row = session.get(Grant, grant.grant_id)
        assert row is not None
        assert usage_report(session, row, vault.settings)["openai"] == openai_usage

    revoke(vault, grant.grant_id)
    gone = httpx.get(f"{live_url}/okap/usage", headers={"authorization": f"Bearer {grant.token}"})
    assert gone.status_code == 401 and gone.json()["error"] == "invalid_token"
    assert "invalid_token" in gone.headers["www-authenticate"]
    missing = httpx.get(f"{live_url}/okap/usage")
    assert missing.status_code == 401
