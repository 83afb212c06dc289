"""Reliability fixtures: a vault whose upstreams are a socket-level faulty server (which
relays to the shared fake upstream when told to pass), with short timeouts and retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from okap_server.settings import Settings
from tests.reliability.faults import FaultyUpstream, faulty_upstream
from tests.support.fake_upstream import FakeUpstream

READ_TIMEOUT = 2.0


@pytest.fixture
def faulty(fake_upstream: FakeUpstream) -> Iterator[FaultyUpstream]:
    with faulty_upstream(fake_upstream, hang_seconds=READ_TIMEOUT + 2) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, faulty: FaultyUpstream) -> Settings:
    return settings.model_copy(
        update={
            "upstreams": faulty.upstreams(),
            "proxy_connect_timeout": 1.0,
            "proxy_read_timeout": READ_TIMEOUT,
            "proxy_retry_attempts": 2,
            "proxy_retry_base_seconds": 0.01,
            "proxy_retry_max_seconds": 2.0,
            "proxy_audit_flush_seconds": 0.05,
            "proxy_grant_cache_seconds": 60,
        }
    )
