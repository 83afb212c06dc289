"""Fixtures for driving the SDK and the CLI against a live vault with a person at the pages."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from okap_client import OkapClient, TokenCache
from okap_server.accounts.service import find_account
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.person import Person

PROVIDER_KEYS = {
    "openai": "sk-test-openai-0123456789",
    "anthropic": "sk-ant-test-0123456789",
    "google": "AIza-test-0123456789",
}
OKAP = str(Path(sys.executable).with_name("okap"))


@pytest.fixture
def settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    """The shared settings with the upstreams pointed at the fake provider, and device
    polling at its fastest so a device flow takes about a second."""
    return settings.model_copy(
        update={"device_poll_interval_seconds": 1, "upstreams": fake_upstream.upstreams()}
    )


@pytest.fixture
def person(vault: Vault, live_url: str, owner: tuple[str, str]) -> Iterator[Person]:
    """The vault's owner, who has stored a key for each of the three big providers."""
    with vault.session() as session:
        account = find_account(session, owner[0])
        assert account is not None
        for provider, secret in PROVIDER_KEYS.items():
            vault.keys.add(
                session, account_id=account.id, provider=provider, label="main", secret=secret
            )
        session.commit()
    with Person(live_url, *owner) as someone:
        yield someone


@pytest.fixture
def cache(tmp_path: Path) -> TokenCache:
    return TokenCache(tmp_path / "config" / "okap" / "tokens.json")


def browser_played_by(
    person: Person, calls: list[str] | None = None, **narrowing
) -> Callable[[str], bool]:
    """An ``open_browser`` that approves on the consent page, then follows the redirect home."""

    def open_browser(url: str) -> bool:
        if calls is not None:
            calls.append(url)
        decision = person.approve(url, **narrowing)
        assert decision.location and decision.location.startswith("http://127.0.0.1:")
        landing = httpx.get(decision.location)  # the browser lands on the loopback listener
        assert "You can close this tab" in landing.text
        return True

    return open_browser


def browser_that_denies(person: Person) -> Callable[[str], bool]:
    def open_browser(url: str) -> bool:
        decision = person.deny(url)
        landing = httpx.get(decision.location)
        assert "Access not granted" in landing.text
        return True

    return open_browser


def device_approver(person: Person, **narrowing) -> Callable[[str], None]:
    """A ``notify`` that reads the printed device instructions and approves them."""

    def notify(message: str) -> None:
        match = re.search(r"^Open (\S+) and enter code ([A-Z]{4}-[A-Z]{4})$", message)
        assert match, message
        assert match.group(1).endswith(f"user_code={match.group(2)}")
        person.approve_device(match.group(2), **narrowing)

    return notify


@pytest.fixture
def okap(live_url: str, cache: TokenCache) -> Callable[..., OkapClient]:
    clients: list[OkapClient] = []

    def make(**options) -> OkapClient:
        options.setdefault("app_name", "Test App")
        client = OkapClient(live_url, cache=cache, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def cli_env(live_url: str, config_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(OKAP_VAULT_URL=live_url, XDG_CONFIG_HOME=str(config_home), PYTHONUNBUFFERED="1")
    env.pop("OKAP_CONFIG_DIR", None)
    return env


def run_approving(
    argv: list[str], env: dict[str, str], person: Person, *, deny: bool = False, **narrowing
) -> subprocess.CompletedProcess[str]:
    """Run a command that asks for access; play the person on the device code it prints."""
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            match = re.search(r"and enter code ([A-Z]{4}-[A-Z]{4})", line)
            if match:
                if deny:
                    person.deny_device(match.group(1))
                else:
                    person.approve_device(match.group(1), **narrowing)
                break
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(argv, proc.returncode, out, "".join(seen) + err)
