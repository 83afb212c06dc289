"""Management API fixtures: the fake upstream behind the vault, and okapm_ tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from okap_server.accounts.models import Account
from okap_server.accounts.service import create_account
from okap_server.context import Vault
from okap_server.manage.management_tokens import ADMIN_SCOPES, SCOPES, create_token
from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream

ALL_BUT_ADMIN = [s for s in SCOPES if s not in ADMIN_SCOPES]


@pytest.fixture
def settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    """Upstreams at the fake; a long grant cache, so revocation must come from invalidation."""
    return settings.model_copy(
        update={
            "upstreams": fake_upstream.upstreams(),
            "proxy_retry_base_seconds": 0.01,
            "proxy_audit_flush_seconds": 0.05,
            "proxy_grant_cache_seconds": 60,
        }
    )


def account(vault: Vault, username: str, *, admin: bool = False) -> str:
    with vault.session() as session:
        found = session.exec(select(Account).where(Account.username == username)).first()
        if found is None:
            found = create_account(
                session, username, "correct horse battery staple", is_admin=admin
            )
            session.commit()
        return found.id


def mint(vault: Vault, username: str, scopes: list[str], *, admin: bool = False) -> str:
    """An okapm_ token for ``username`` (created if missing) with ``scopes``."""
    account(vault, username, admin=admin)
    with vault.session() as session:
        owner = session.exec(select(Account).where(Account.username == username)).one()
        _, token = create_token(session, owner, name="tests", scopes=scopes)
        session.commit()
    return token


def client(live_url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"{live_url}/api/v1", headers=headers, timeout=15)


@pytest.fixture
def api(vault: Vault, live_url: str) -> Iterator[httpx.Client]:
    """Alice (an admin) with every scope."""
    with client(live_url, mint(vault, "alice", list(SCOPES), admin=True)) as c:
        yield c


def problem_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code and body["type"].startswith("urn:okap:")
    return body
