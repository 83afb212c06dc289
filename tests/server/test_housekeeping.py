"""Undecided requests expire on their own, without anyone opening a page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from okap_server.authorization.models import AuthorizationRequest
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.support.databases import database_url_for
from tests.support.live import free_port


@pytest.fixture
def settings(okap_home: Path, backend: str) -> Iterator[Settings]:
    port = free_port()
    with database_url_for(backend, okap_home) as url:
        yield Settings(
            home=okap_home,
            database_url=url,
            port=port,
            public_url=f"http://127.0.0.1:{port}",
            housekeeping_seconds=0.2,
        )


def test_a_stale_request_expires_in_the_background(live_url: str, vault: Vault) -> None:
    body = {
        "okap": "1.0",
        "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
        "client": {"name": "Notes"},
    }
    answer = httpx.post(f"{live_url}/okap/authorize", json=body, headers={"Prefer": "wait=0"})
    assert answer.json()["status"] == "pending"
    with vault.session() as session:
        session.execute(
            update(AuthorizationRequest)
            .where(col(AuthorizationRequest.status) == "pending")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    deadline = time.monotonic() + 5
    status = "pending"
    while status == "pending" and time.monotonic() < deadline:
        time.sleep(0.1)
        with vault.session() as session:
            row = session.exec(select(AuthorizationRequest)).one()
            status = row.status
    assert status == "expired"
