"""Undecided requests expire, and rows nobody can use any more are deleted, on their own,
without anyone opening a page."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from okap_server.accounts.models import WebSession
from okap_server.accounts.service import create_account
from okap_server.authorization.models import AuthorizationCode, AuthorizationRequest
from okap_server.authorization.retention import KEPT_AFTER_EXPIRY
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.settings import Settings
from tests.server.authorization.conftest import authorize_params, pkce_pair
from tests.support.databases import database_url_for
from tests.support.live import free_port

HOUR = timedelta(hours=1)


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


def test_rows_nobody_can_use_any_more_are_deleted(live_url: str, vault: Vault) -> None:
    """A flood's rows (and plain years of use) do not stay: expired requests with their
    device codes, request URIs and poll handles, spent codes and ended sessions go."""
    details = json.dumps([{"type": "ai_model_access", "provider": "openai"}])
    okap = {"okap": "1.0", "authorization_details": json.loads(details), "client": {"name": "A"}}
    with httpx.Client(base_url=live_url) as app:
        kept = app.post("/okap/authorize", json=okap, headers={"Prefer": "wait=0"}).json()
        for _ in range(3):
            app.post("/okap/authorize", json=okap, headers={"Prefer": "wait=0"})
        device = app.post(
            "/oauth/device_authorization",
            data={"client_id": "cli", "authorization_details": details},
        )
        assert device.status_code == 200
        _, challenge = pkce_pair()
        pushed = app.post("/oauth/par", data=authorize_params("http://127.0.0.1:5/cb", challenge))
        assert pushed.status_code == 201
    kept_id = kept["consent_url"].rsplit("/", 1)[-1]
    now = utcnow()
    with vault.session() as session:
        rows = session.exec(select(AuthorizationRequest)).all()
        pushed_row = next(r for r in rows if r.request_uri_hash)
        gone = [r for r in rows if r.id not in (kept_id, pushed_row.id)]
        assert len(gone) == 4
        # Expired long enough ago (some already marked, some still "pending").
        for row in gone:
            row.expires_at = now - KEPT_AFTER_EXPIRY - timedelta(seconds=5)
            session.add(row)
        # An approved code-flow request whose code expired recently keeps both (a replay
        # must still be recognised), and one whose code expired over an hour ago loses both.
        recent, old = gone[0], gone[1]
        for row, code_expiry in ((recent, now - timedelta(minutes=30)), (old, now - HOUR)):
            session.add(
                AuthorizationCode(
                    code_hash=f"{row.id}-code",
                    request_id=row.id,
                    client_id=row.client_id,
                    redirect_uri="http://127.0.0.1:5/cb",
                    code_challenge=challenge,
                    expires_at=code_expiry - timedelta(seconds=1),
                )
            )
        # The pushed request's request_uri expired unused (pushed more than 90 s ago).
        pushed_row.created_at = now - timedelta(seconds=vault.settings.par_ttl_seconds + 1)
        session.add(pushed_row)
        account = create_account(session, "dora", "dora's long passphrase")
        session.add(
            WebSession(
                id_hash="ended",
                account_id=account.id,
                csrf_token="x",
                expires_at=now - timedelta(seconds=1),
            )
        )
        session.commit()
        recent_id, gone_ids = recent.id, {r.id for r in gone} - {recent.id}
    deadline = time.monotonic() + 10
    while True:
        with vault.session() as session:
            left = {r.id: r for r in session.exec(select(AuthorizationRequest)).all()}
            codes = {c.request_id for c in session.exec(select(AuthorizationCode)).all()}
            sessions = session.exec(select(WebSession)).all()
        if not gone_ids & left.keys() and not sessions or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not gone_ids & left.keys()
    assert set(left) == {kept_id, recent_id, pushed_row.id}
    assert codes == {recent_id}
    assert sessions == []
    # The unused push left the Pending list at once; the live request is untouched.
    assert left[pushed_row.id].status == "expired"
    assert left[kept_id].status == "pending"
