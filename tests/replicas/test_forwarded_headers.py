"""Behind a reverse proxy, the sign-in throttle keys on the real client address, but only
when the peer is a trusted proxy (``OKAP_TRUSTED_PROXIES``); otherwise forwarded headers are
ignored, so a client cannot dodge the per-IP throttle by inventing ``X-Forwarded-For``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from okap_server.audit.models import SecurityEvent
from okap_server.context import Vault
from okap_server.settings import load_settings
from tests.replicas.processes import running_replicas

MAX_FAILURES = 2  # per account; an IP is throttled after twice that


@pytest.fixture
def served(vault: Vault, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The vault run by the real ``okap-server serve`` (its uvicorn options, not a test's)."""
    env = {
        "OKAP_DATABASE_URL": vault.settings.effective_database_url,
        "OKAP_MASTER_KEY": vault.settings.master_key_file.read_text().strip(),
        "OKAP_SIGNIN_MAX_FAILURES": str(MAX_FAILURES),
        "OKAP_TRUSTED_PROXIES": getattr(request, "param", ""),
    }
    with running_replicas(["only"], env, tmp_path) as (replica,):
        yield replica.url


def failed_sign_in(live_url: str, forwarded_for: str) -> int:
    """A wrong password for an unknown name (so only the per-IP throttle applies)."""
    headers = {"x-forwarded-for": forwarded_for, "x-forwarded-proto": "https"}
    # The pages are on localhost: the replica's public URL is its 127.0.0.1 address.
    pages = live_url.replace("//127.0.0.1:", "//localhost:")
    with httpx.Client(base_url=pages, headers=headers) as browser:
        form = browser.get("/signin").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        answer = browser.post(
            "/signin",
            data={"username": "nobody", "password": "wrong", "csrf_token": token.group(1)},
        )
        return answer.status_code


def recorded_ips(vault: Vault) -> list[str | None]:
    with vault.session() as session:
        events = session.exec(
            select(SecurityEvent)
            .where(SecurityEvent.kind == "signin_failed")
            .order_by(col(SecurityEvent.created_at))
        ).all()
        return [event.ip for event in events]


@pytest.mark.parametrize("served", ["127.0.0.1"], indirect=True)
def test_behind_a_trusted_proxy_the_real_client_ip_is_throttled(vault: Vault, served: str) -> None:
    attacker, bystander = "203.0.113.7", "198.51.100.9"
    statuses = [failed_sign_in(served, f"{attacker}") for _ in range(2 * MAX_FAILURES + 1)]
    assert statuses == [401] * (2 * MAX_FAILURES) + [429]
    # Someone else behind the same proxy is not locked out by the attacker's failures.
    assert failed_sign_in(served, bystander) == 401
    assert recorded_ips(vault) == [attacker] * (2 * MAX_FAILURES) + [bystander]


def test_without_trusted_proxies_forwarded_headers_are_ignored(vault: Vault, served: str) -> None:
    # Each attempt claims a new address; the vault keys on the real peer all the same.
    statuses = [failed_sign_in(served, f"203.0.113.{n}") for n in range(2 * MAX_FAILURES + 1)]
    assert statuses == [401] * (2 * MAX_FAILURES) + [429]
    assert set(recorded_ips(vault)) == {"127.0.0.1"}


def test_trusted_proxies_must_be_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKAP_TRUSTED_PROXIES", "10.0.0.0/8, 172.28.0.10")
    assert load_settings().trusted_proxy_list == ["10.0.0.0/8", "172.28.0.10"]
    monkeypatch.setenv("OKAP_TRUSTED_PROXIES", "caddy")
    with pytest.raises(Exception, match="OKAP_TRUSTED_PROXIES: .*'caddy' is not an IP address"):
        load_settings()
