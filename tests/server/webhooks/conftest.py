"""Webhook fixtures: a receiver on loopback, a vault whose worker polls and retries fast."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from okap_server.accounts.management_tokens import SCOPES
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.server.api.conftest import client, mint
from tests.support.fake_upstream import FakeUpstream
from tests.support.webhook_receiver import Receiver, running_receiver

FAST = {
    "webhook_poll_seconds": 0.05,
    "webhook_retry_base_seconds": 0.1,
    "webhook_retry_cap_seconds": 0.4,
    "webhook_timeout_seconds": 2.0,
    "proxy_audit_flush_seconds": 0.05,
    "proxy_retry_base_seconds": 0.01,
}


@pytest.fixture
def settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    return settings.model_copy(update={"upstreams": fake_upstream.upstreams(), **FAST})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def api(vault: Vault, live_url: str, owner: tuple[str, str]) -> Iterator[httpx.Client]:
    """The owner (alice, the vault's only account) with every scope."""
    with client(live_url, mint(vault, owner[0], list(SCOPES), admin=True)) as c:
        yield c


def register(api: httpx.Client, url: str, events: list[str] | None = None) -> dict[str, str]:
    answer = api.post("/webhooks", json={"url": url, "events": events} if events else {"url": url})
    assert answer.status_code == 201, answer.text
    body: dict[str, str] = answer.json()
    assert body["secret"].startswith("whsec_")
    return body
