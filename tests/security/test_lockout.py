"""Lockout denial of service (issue 15): a stranger's wrong passwords slow down the stranger,
never the owner. The owner's correct password still works from a browser that signed in
before (its ``okap_device`` cookie) and from an address that has not been failing; every
failure is in the audit trail. Over real HTTP, from two loopback addresses."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import select

from okap_server.audit.models import SecurityEvent
from okap_server.context import Vault
from tests.support.live import client_from
from tests.support.person import Person, PersonError, parse_page

STRANGER_TRIES = 12
KNOWN_BROWSER = "okap_device"  # SPEC.md "The person's pages" (``__Host-`` on https)


def try_password(browser: httpx.Client, username: str, password: str) -> httpx.Response:
    """The sign-in form, filled in and sent, as a browser does (following the vault to the
    host its pages are served on, if it sends the browser there)."""
    page = browser.get("/signin", follow_redirects=True)
    [form] = [f for f in parse_page(page.text).forms if f.action.startswith("/signin")]
    data = dict(form.fields) | {"username": username, "password": password}
    return browser.post(page.url.join(form.action), data=data)


@pytest.fixture
def stranger(live_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_url) as browser:
        yield browser


def test_a_strangers_wrong_passwords_never_lock_the_owner_out(
    live_url: str, vault: Vault, owner: tuple[str, str], stranger: httpx.Client
) -> None:
    username, password = owner
    with Person(live_url, *owner) as laptop:  # the owner's own browser, signed in before
        laptop.sign_in()
        laptop.sign_out()
        answers = [
            try_password(stranger, username, f"guess {n}").status_code
            for n in range(STRANGER_TRIES)
        ]
        limit = vault.settings.signin_max_failures
        assert answers == [401] * limit + [429] * (STRANGER_TRIES - limit)
        refused = try_password(stranger, username, password)  # even the right one, for now
        assert refused.status_code == 429
        assert "Too many failed sign-ins" in refused.text
        # The owner's browser, on the stranger's very address, signs in.
        laptop.sign_in()
        assert laptop.open("/consent").status_code == 200
        assert laptop.client.cookies.get(KNOWN_BROWSER)  # what made it a known browser
    # So does the owner on a new browser at another address.
    with client_from("127.0.0.2", live_url) as phone:
        assert try_password(phone, username, password).status_code == 303
    # And the stranger is still waiting, and is told for how long.
    assert try_password(stranger, username, f"guess {STRANGER_TRIES}").status_code == 429
    assert 60 >= int(refused.headers["retry-after"]) >= 1
    with vault.session() as session:
        failures = session.exec(
            select(SecurityEvent).where(SecurityEvent.kind == "signin_failed")
        ).all()
    assert len(failures) == limit
    assert {event.ip for event in failures} == {"127.0.0.1"}


def test_a_known_browser_is_throttled_on_its_own_failures(
    live_url: str, vault: Vault, owner: tuple[str, str], stranger: httpx.Client
) -> None:
    """A known browser is judged by its own failures: not slowed by the stranger's on its
    address, and no licence to guess. A tampered cookie makes a browser unknown."""
    username, password = owner
    limit = vault.settings.signin_max_failures
    with Person(live_url, *owner) as laptop:
        laptop.sign_in()
        laptop.sign_out()
        for n in range(limit):
            assert try_password(stranger, username, f"guess {n}").status_code == 401
        with httpx.Client(base_url=live_url) as tampered:
            for cookie in laptop.client.cookies.jar:
                copied = copy.copy(cookie)
                if cookie.name == KNOWN_BROWSER:
                    copied.value = (cookie.value or "")[:-4] + "AAAA"
                tampered.cookies.jar.set_cookie(copied)
            assert try_password(tampered, username, password).status_code == 429
        answers = [
            try_password(laptop.client, username, f"typo {n}").status_code for n in range(limit + 1)
        ]
        assert answers == [401] * limit + [429]
        with pytest.raises(PersonError, match="Too many failed sign-ins"):
            laptop.sign_in()
    with vault.session() as session:
        failed = session.exec(
            select(SecurityEvent).where(SecurityEvent.kind == "signin_failed")
        ).all()
    browsers = [event.detail.get("browser") for event in failed]
    assert browsers.count(None) == limit  # the stranger's
    assert len(set(browsers) - {None}) == 1  # the laptop's, all its own
