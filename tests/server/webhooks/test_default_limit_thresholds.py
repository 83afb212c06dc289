"""``budget.threshold`` on a grant entry stored without limits: the proxy holds it to the
vault's default limits, so its thresholds are crossed, and sent, like any other's."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy.orm.attributes import flag_modified

from okap_server.context import Vault
from okap_server.grants.models import Grant
from okap_server.settings import DefaultLimits, Settings
from tests.server.api.test_flows import add_key
from tests.server.webhooks.conftest import register
from tests.server.webhooks.test_signed_deliveries import (
    BIG,
    chat,
    payloads,
    personal,
    settled_cost,
)
from tests.support.fake_answers import FakeUsage
from tests.support.fake_upstream import FakeUpstream
from tests.support.webhook_receiver import Receiver

DAILY = 1.0  # the vault's default daily spend, USD


@pytest.fixture
def settings(settings: Settings) -> Settings:
    defaults = DefaultLimits(
        daily_spend=DAILY, monthly_spend=None, requests_per_minute=None, requests_per_day=None
    )
    return settings.model_copy(update={"default_limits": defaults})


def _strip_limits(vault: Vault, grant_id: str) -> None:
    """The grant as one stored before limits were always written: no limits object."""
    with vault.session() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        grant.details = [{k: v for k, v in e.items() if k != "limits"} for e in grant.details]  # type: ignore[misc]
        flag_modified(grant, "details")
        session.add(grant)
        session.commit()


def test_default_daily_spend_thresholds_are_sent_once_each(
    vault: Vault,
    live_url: str,
    api: httpx.Client,
    fake_upstream: FakeUpstream,
    receiver: Receiver,
) -> None:
    add_key(api)
    endpoint = register(api, receiver.url, ["budget.threshold"])
    # What one BIG answer costs, on a grant whose every limit is cleared.
    fake_upstream.usage["openai"] = FakeUsage(input=12, output=BIG)
    probe = personal(api, daily_spend=None, monthly_spend=None, total_spend=None)
    chat(live_url, probe["access_token"])
    per_token = settled_cost(vault, probe["grant_id"], 1) / BIG  # micro-dollars
    assert per_token > 0

    grant = personal(api)
    grant_id = grant["grant_id"]
    _strip_limits(vault, grant_id)
    limit_micros = DAILY * 1_000_000
    # 55 % (50 crossed), 85 % (80), 86 % (none), 106 % (100), 120 % (none: already over).
    for count, share in enumerate((0.55, 0.30, 0.01, 0.20), start=1):
        fake_upstream.usage["openai"] = FakeUsage(
            input=0, output=int(limit_micros * share / per_token)
        )
        chat(live_url, grant["access_token"])
        settled_cost(vault, grant_id, count)

    receiver.wait_for(3)
    time.sleep(0.5)  # nothing more comes: no crossing is sent twice
    got = [p["data"] for p in payloads(receiver, endpoint["secret"])]
    assert [t["percent"] for t in got] == [50, 80, 100], got  # type: ignore[index]
    for t in got:
        assert t["grant_id"] == grant_id and t["limit"] == "daily_spend"  # type: ignore[index]
        assert t["limit_usd"] == DAILY  # type: ignore[index]
