"""A real Chromium (Debian's, at /usr/bin/chromium) driven by Playwright, against a live vault.

Playwright cannot download its own browser here, so it launches the system one with the
flags that keep it off the network. Without /usr/bin/chromium the browser tests skip with
the reason, unless ``OKAP_REQUIRE_BROWSER=1`` (CI), where they fail instead.
Screenshots go under ``OKAP_TEST_ARTIFACTS`` (default ``test-artifacts/screenshots``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def backend() -> str:
    """The browser story runs on SQLite only; the isolation tests cover both back ends."""
    return "sqlite"


@pytest.fixture
def settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    return settings.model_copy(
        update={
            "upstreams": fake_upstream.upstreams(),
            "proxy_retry_base_seconds": 0.01,
            "proxy_audit_flush_seconds": 0.05,
            "okap_wait_seconds": 0.2,
            "okap_poll_interval_seconds": 1,
            "dashboard_poll_seconds": 0.3,
        }
    )


@pytest.fixture(scope="module")  # sync Playwright holds a running loop: end it with the module
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing (install it with: apt-get install -y chromium)"
        if os.environ.get("OKAP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"OKAP_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("OKAP_TEST_ARTIFACTS", "test-artifacts/screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
