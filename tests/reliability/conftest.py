"""Reliability fixtures: a vault whose upstreams are a socket-level faulty server (which
relays to the shared fake upstream when told to pass), with short timeouts and retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from okap_server.settings import Settings
from tests.reliability.faults import FaultyUpstream, faulty_upstream
from tests.support.databases import database_url_for
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import free_port

READ_TIMEOUT = 2.0


@pytest.fixture
def faulty(fake_upstream: FakeUpstream) -> Iterator[FaultyUpstream]:
    with faulty_upstream(fake_upstream, hang_seconds=READ_TIMEOUT + 2) as server:
        yield server


@pytest.fixture
def settings(okap_home: Path, backend: str, faulty: FaultyUpstream) -> Iterator[Settings]:
    port = free_port()
    with database_url_for(backend, okap_home) as url:
        yield Settings(
            home=okap_home,
            database_url=url,
            port=port,
            public_url=f"http://127.0.0.1:{port}",
            upstreams=faulty.upstreams(),
            proxy_connect_timeout=1.0,
            proxy_read_timeout=READ_TIMEOUT,
            proxy_retry_attempts=2,
            proxy_retry_base_seconds=0.01,
            proxy_retry_max_seconds=2.0,
            proxy_audit_flush_seconds=0.05,
            proxy_grant_cache_seconds=60,
        )
