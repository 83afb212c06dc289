"""Security fixtures: a vault pointed at the fake upstream with short waits, a person with a
stored key, and a loopback redirect listener for the code flow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from okap_server.accounts.service import find_account
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.server.authorization.conftest import RedirectListener
from tests.support.fake_upstream import FakeUpstream
from tests.support.person import Person

OPENAI_SECRET = "sk-proj-SECURITYsuite0123456789abcdefXYZ"


@pytest.fixture
def settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    return settings.model_copy(
        update={
            "upstreams": fake_upstream.upstreams(),
            "okap_wait_seconds": 1.0,
            "device_poll_interval_seconds": 1,
            "okap_poll_interval_seconds": 1,
            "proxy_retry_base_seconds": 0.01,
            "proxy_audit_flush_seconds": 0.05,
            "proxy_max_body_bytes": 64 * 1024,
        }
    )


@pytest.fixture
def openai_key(vault: Vault, owner: tuple[str, str]) -> str:
    with vault.session() as session:
        account = find_account(session, owner[0])
        assert account is not None
        key = vault.keys.add(
            session,
            account_id=account.id,
            provider="openai",
            label="personal",
            secret=OPENAI_SECRET,
        )
        session.commit()
    return key.id


@pytest.fixture
def person(live_url: str, owner: tuple[str, str]) -> Iterator[Person]:
    with Person(live_url, *owner) as someone:
        yield someone


@pytest.fixture
def listener() -> Iterator[RedirectListener]:
    server = RedirectListener()
    yield server
    server.close()


# Checks that exercise no storage difference run on one back end, to keep the suite fast.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])
