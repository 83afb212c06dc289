"""Telemetry fixtures: a vault whose upstreams are the fake, and a metrics scraper."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    return settings.model_copy(
        update={
            "upstreams": fake_upstream.upstreams(),
            "proxy_retry_base_seconds": 0.01,
            "proxy_audit_flush_seconds": 0.05,
        }
    )


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text page, by name and labels (the library's parser)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def scrape(url: str, token: str | None) -> tuple[str, Samples]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(f"{url}/metrics", headers=headers, timeout=15)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return answer.text, parse(answer.text)


def scrape_until(
    url: str, token: str | None, ready: Callable[[Samples], bool], timeout: float = 15.0
) -> tuple[str, Samples]:
    """Scrape until ``ready`` (a streamed answer is counted when its last byte went out,
    which the app may see a moment before the vault does)."""
    deadline = time.monotonic() + timeout
    while True:
        text, samples = scrape(url, token)
        if ready(samples) or time.monotonic() > deadline:
            return text, samples
        time.sleep(0.05)
