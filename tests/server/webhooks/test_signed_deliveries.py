"""Signed deliveries over real HTTP, verified with the ``standardwebhooks`` library by a
receiver on loopback: an approval, budget thresholds crossed once each (80 % and then
100 %, never twice), a revocation, a denied consent; and no secret in any payload."""

from __future__ import annotations

import json
import time

import httpx
import openai
from sqlmodel import select

from okap_server.context import Vault
from okap_server.proxy.models import RequestLog
from tests.server.api.test_flows import SECRET, add_key
from tests.server.webhooks.conftest import register
from tests.support.fake_answers import FakeUsage
from tests.support.fake_upstream import FakeUpstream
from tests.support.webhook_receiver import Receiver

BIG = 100_000  # output tokens of one answer: its cost dwarfs the input's


def personal(api: httpx.Client, **limits: float) -> dict[str, str]:
    entry = {"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}
    minted = api.post(
        "/tokens",
        json={"name": "budget script", "authorization_details": [entry | {"limits": limits}]},
    )
    assert minted.status_code == 201, minted.text
    return dict(minted.json())


def chat(live_url: str, token: str) -> None:
    client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)
    client.chat.completions.create(
        model="gpt-4o-mini", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )


def settled_cost(vault: Vault, grant_id: str, count: int) -> int:
    deadline = time.monotonic() + 10
    while True:
        with vault.session() as session:
            rows = session.exec(select(RequestLog).where(RequestLog.grant_id == grant_id)).all()
        if len(rows) >= count:
            return sum(r.cost_micros for r in rows)
        assert time.monotonic() < deadline, "the request was not settled"
        time.sleep(0.05)


def payloads(receiver: Receiver, secret: str) -> list[dict[str, object]]:
    return [d.verified(secret) for d in receiver.accepted()]


def test_approval_thresholds_and_revocation_arrive_signed_and_once(
    vault: Vault,
    live_url: str,
    api: httpx.Client,
    fake_upstream: FakeUpstream,
    receiver: Receiver,
) -> None:
    add_key(api)
    endpoint = register(api, receiver.url)
    secret = endpoint["secret"]
    # What one BIG answer costs, measured on a grant without limits.
    fake_upstream.usage["openai"] = FakeUsage(input=12, output=BIG)
    probe = personal(api, total_spend=None, daily_spend=None, monthly_spend=None)
    chat(live_url, probe["access_token"])
    unit = settled_cost(vault, probe["grant_id"], 1)
    assert unit > 0

    # A total limit the first answer fills to 55 %: 50 % is crossed.
    limit_usd = unit / 0.55 / 1_000_000
    grant = personal(api, total_spend=limit_usd, daily_spend=None, monthly_spend=None)
    token, grant_id = grant["access_token"], grant["grant_id"]
    steps = [(BIG, 1), (int(BIG * 0.30 / 0.55), 2), (int(BIG * 0.01 / 0.55), 3)]
    steps.append((int(BIG * 0.20 / 0.55), 4))  # 55 -> 85 (80 %), -> 86 (none), -> 106 (100 %)
    for output, count in steps:
        fake_upstream.usage["openai"] = FakeUsage(input=12, output=output)
        chat(live_url, token)
        settled_cost(vault, grant_id, count)
    assert api.delete(f"/grants/{grant_id}").status_code == 204

    # approved x2, thresholds 50 / 80 / 100 of the limited grant, revoked.
    receiver.wait_for(6)
    time.sleep(0.5)  # nothing more comes: no crossing is sent twice
    got = payloads(receiver, secret)
    kinds = [p["type"] for p in got]
    assert kinds == [
        "grant.approved",
        "grant.approved",
        "budget.threshold",
        "budget.threshold",
        "budget.threshold",
        "grant.revoked",
    ], kinds
    thresholds = [p["data"] for p in got if p["type"] == "budget.threshold"]
    assert [t["percent"] for t in thresholds] == [50, 80, 100]  # type: ignore[index]
    for t in thresholds:
        assert t["grant_id"] == grant_id and t["limit"] == "total_spend"  # type: ignore[index]
        assert t["provider"] == "openai" and t["period"] == "total"  # type: ignore[index]
    assert thresholds[1]["spent_usd"] >= 0.8 * limit_usd  # type: ignore[index,operator]
    approved = got[1]["data"]
    assert approved["grant_id"] == grant_id  # type: ignore[index]
    assert approved["app"] == {"client_id": "personal:budget script", "name": "budget script"}  # type: ignore[index]
    assert got[-1]["data"]["grant_id"] == grant_id  # type: ignore[index]
    # Signed per Standard Webhooks: a wrong secret fails, and ids are unique.
    first = receiver.accepted()[0]
    assert first.headers["webhook-signature"].startswith("v1,")
    assert len({d.id for d in receiver.accepted()}) == 6
    # No secret anywhere: not the token, not the key, not the endpoint's secret, no prompt.
    for delivery in receiver.accepted():
        text = delivery.body.decode()
        for forbidden in (token, probe["access_token"], SECRET, secret, '"hi"'):
            assert forbidden not in text
        assert "key_id" not in json.loads(text)["data"].get("access", {}).get("openai", {})


def test_a_wrong_secret_fails_verification(api: httpx.Client, receiver: Receiver) -> None:
    from standardwebhooks.webhooks import WebhookVerificationError

    endpoint = register(api, receiver.url)
    answer = api.post(f"/webhooks/{endpoint['id']}/test")
    assert answer.status_code == 202, answer.text
    delivery = receiver.wait_for(1)[0]
    assert delivery.verified(endpoint["secret"])["type"] == "webhook.test"
    other = register(api, receiver.url)
    try:
        delivery.verified(other["secret"])
    except WebhookVerificationError:
        pass
    else:
        raise AssertionError("a signature verified under another endpoint's secret")
