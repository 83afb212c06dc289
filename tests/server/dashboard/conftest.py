"""Dashboard fixtures: a live vault whose upstreams are the fake provider server, and
people (real HTTP, cookie jar, the pages' own forms) to click through it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from okap_server.accounts.service import create_account
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.person import Person

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    return settings.model_copy(
        update={
            "upstreams": fake_upstream.upstreams(),
            "proxy_retry_base_seconds": 0.01,
            "proxy_audit_flush_seconds": 0.05,
            "okap_wait_seconds": 0.2,
            "dashboard_poll_seconds": 0.3,
        }
    )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


class Visitor(Person):
    """A signed-in person who also posts the dashboard's one-button forms."""

    def page(self, path: str) -> httpx.Response:
        return self.open(path)

    def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True
    ) -> httpx.Response:
        fields = dict(data or {})
        if csrf:
            fields["csrf_token"] = csrf_of(self.open("/settings").text)
        return self.client.post(path, data=fields)


@pytest.fixture
def people(vault: Vault, live_url: str) -> Iterator[Callable[..., Visitor]]:
    """``people("alice", admin=True)``: create the account and sign it in."""
    made: list[Visitor] = []

    def make(username: str, *, admin: bool = False) -> Visitor:
        with vault.session() as session:
            create_account(session, username, PASSWORD, is_admin=admin)
            session.commit()
        visitor = Visitor(live_url, username, PASSWORD)
        visitor.sign_in()
        made.append(visitor)
        return visitor

    yield make
    for visitor in made:
        visitor.close()
