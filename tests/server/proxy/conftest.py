"""Proxy fixtures: the fake upstream, a vault whose upstreams point at it, SDK clients."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream


@pytest.fixture
def settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    """The shared settings fixture, with every upstream pointed at the fake and the waits
    shortened; the grant cache TTL is long so revocation must come from invalidation."""
    return settings.model_copy(
        update={
            "upstreams": fake_upstream.upstreams(),
            "proxy_retry_base_seconds": 0.01,
            "proxy_audit_flush_seconds": 0.05,
            "proxy_grant_cache_seconds": 60,
            "proxy_max_body_bytes": 256 * 1024,
        }
    )


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything logged at DEBUG, including uvicorn's, httpx's and httpcore's loggers."""
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore", "okap"]
    previous = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for name, level in previous.items():
        logging.getLogger(name).setLevel(level)
