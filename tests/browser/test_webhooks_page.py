"""The webhooks page in Chromium: add an endpoint (the secret shown once, and it verifies
what arrives), a refused URL named, a test event in the delivery log, and an endpoint
that kept failing shown disabled with the reason, then enabled again. Screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from okap_server.accounts.service import create_account
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.browser.test_dashboard_newcomer import PASSWORD, sign_in
from tests.server.webhooks.conftest import FAST
from tests.support.webhook_receiver import Receiver, running_receiver

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={**FAST, "webhook_max_attempts": 3})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def test_the_webhooks_page(
    vault: Vault, live_url: str, page: Page, screenshots: Path, receiver: Receiver
) -> None:
    with vault.session() as session:
        create_account(session, "wendy", PASSWORD, is_admin=True)
        session.commit()
    sign_in(page, live_url, "wendy")
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()

    page.get_by_label("URL (https, or http to this machine)").fill("http://169.254.169.254/x")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("alert")).to_contain_text("link-local address")

    page.get_by_label("URL (https, or http to this machine)").fill(receiver.url)
    page.get_by_label("Description (optional)").fill("my laptop's receiver")
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#webhook-secret").inner_text()
    assert secret.startswith("whsec_")
    page.screenshot(path=str(screenshots / "webhooks-added.png"), full_page=True)

    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_role("status")).to_contain_text("Test event queued")
    delivery = receiver.wait_for(1)[0]
    assert delivery.verified(secret)["type"] == "webhook.test"
    page.reload()
    page.get_by_text("Delivery log").first.click()
    expect(page.locator(".delivery-delivered")).to_have_count(1)
    assert secret not in page.content()  # shown once, never again

    receiver.status = 500
    page.get_by_role("button", name="Send test event").click()
    endpoint = page.locator(".webhook-endpoint")
    for _ in range(100):
        page.reload()
        if endpoint.get_by_text("Disabled", exact=True).count():
            break
        page.wait_for_timeout(100)
    expect(endpoint.get_by_role("alert")).to_contain_text("3 attempts failed")
    expect(endpoint.get_by_role("alert")).to_contain_text("answered HTTP 500")
    expect(page.locator(".delivery-failed")).to_have_count(1)
    page.screenshot(path=str(screenshots / "webhooks-disabled.png"), full_page=True)

    page.get_by_role("button", name="Enable again").click()
    expect(page.get_by_role("status")).to_contain_text("Endpoint enabled")
    expect(endpoint.get_by_text("Active", exact=True)).to_be_visible()
