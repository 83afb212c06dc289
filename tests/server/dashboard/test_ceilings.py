"""Spend ceilings on the dashboard: the account's on Settings, each key's on Keys, with
what has been spent and what is left; a bad value is refused and nothing is saved."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
from sqlmodel import select

from okap_server.accounts.models import Account
from okap_server.context import Vault
from okap_server.vault.models import ProviderKey
from tests.server.dashboard.conftest import Visitor
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import entry, make_grant


@pytest.fixture
def backend() -> str:
    return "sqlite"


def test_the_account_ceiling_is_set_on_settings_and_refuses_every_app(
    vault: Vault, live_url: str, people: Callable[..., Visitor], fake_upstream: FakeUpstream
) -> None:
    alice = people("alice")
    grant = make_grant(vault, entry("openai"), username="alice")
    client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=grant.token, max_retries=0)
    fake_upstream.usage["openai"] = FakeUsage(input=100, output=100)
    hi = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model="gpt-4o-mini", messages=hi, max_tokens=100)
    refused = alice.post("/settings/ceilings", {"daily": "-1", "weekly": "", "monthly": ""})
    assert refused.status_code == 422
    assert "daily ceiling: must not be negative. Nothing was saved." in refused.text
    saved = alice.post("/settings/ceilings", {"daily": "0.00001", "weekly": "", "monthly": "9"})
    assert saved.status_code == 303
    page = alice.page("/settings?notice=ceilings").text
    assert "Spend ceiling saved" in page
    assert "spent this month of $9.00" in page and "no ceiling" in page
    detail = alice.page(f"/apps/{grant.grant_id}").text
    assert "Account ceiling this month" in detail and "of $9.00 this month" in detail
    # Lower than what the app has spent today: its next call is refused at once.
    with pytest.raises(openai.RateLimitError, match="account's daily spend ceiling"):
        client.chat.completions.create(model="gpt-4o-mini", messages=hi, max_tokens=100)
    client.close()
    with vault.session() as session:
        account = session.exec(select(Account).where(Account.username == "alice")).one()
        assert account.daily_ceiling_micros == 10 and account.monthly_ceiling_micros == 9_000_000


def test_a_key_ceiling_is_set_on_the_keys_page(
    vault: Vault, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    make_grant(vault, entry("openai"), username="alice")
    with vault.session() as session:
        key = session.exec(select(ProviderKey)).one()
    refused = alice.post(f"/keys/{key.id}/ceiling", {"monthly": "ten"})
    assert refused.status_code == 422 and "is not a number of USD" in refused.text
    assert alice.post(f"/keys/{key.id}/ceiling", {"monthly": "25"}).status_code == 303
    page = alice.page("/keys").text
    assert 'value="25"' in page and "$0.00 spent this month of $25.00, $25.00 left" in page
    bob = people("bob")
    assert bob.post(f"/keys/{key.id}/ceiling", {"monthly": "1"}).status_code == 404
    with vault.session() as session:
        assert session.get(ProviderKey, key.id).monthly_ceiling_micros == 25_000_000  # type: ignore[union-attr]
