"""Two real replicas on one PostgreSQL database deliver each webhook event once: both
workers claim from the same outbox (``FOR UPDATE SKIP LOCKED`` and a lease), and each
endpoint still gets its events in the order they happened."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from okap_server.accounts.management_tokens import SCOPES
from okap_server.context import open_vault
from okap_server.manage.webhooks import create_endpoint
from okap_server.settings import Settings
from okap_server.vault.crypto import generate_master_key
from okap_server.vault.masterkey import encode_master_key
from tests.replicas.processes import running_replicas
from tests.server.api.conftest import account, mint
from tests.support.databases import fresh_postgres_url
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import ensure_key
from tests.support.webhook_receiver import running_receiver

pytestmark = pytest.mark.postgres
ENDPOINTS = 4
GRANTS = 10


def test_two_replicas_deliver_each_event_once(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    master_key = encode_master_key(generate_master_key())
    with fresh_postgres_url() as url, running_receiver() as receiver:
        settings = Settings(
            home=tmp_path / "home-test", database_url=url, master_key=SecretStr(master_key)
        )
        vault = open_vault(settings)
        try:
            owner = account(vault, "team-lead", admin=True)
            ensure_key(vault, owner, "openai")
            token = mint(vault, "team-lead", list(SCOPES), admin=True)
            secrets = [create_endpoint(vault, owner, receiver.url, None)[1] for _ in range(4)]
        finally:
            vault.dispose()
        receiver.delay = 0.01
        env = {
            "OKAP_DATABASE_URL": url,
            "OKAP_MASTER_KEY": master_key,
            "OKAP_WEBHOOK_POLL_SECONDS": "0.02",
        }
        with running_replicas(["a", "b"], env, tmp_path) as replicas:
            entry = {"type": "ai_model_access", "provider": "openai"}
            headers = {"Authorization": f"Bearer {token}"}
            for index in range(GRANTS):  # half the changes on each replica
                base = f"{replicas[index % 2].url}/api/v1"
                with httpx.Client(base_url=base, headers=headers) as api:
                    minted = api.post(
                        "/tokens", json={"name": f"app {index}", "authorization_details": [entry]}
                    )
                    assert minted.status_code == 201, minted.text
            expected = GRANTS * ENDPOINTS
            receiver.wait_for(expected, timeout=60)
            time.sleep(1.0)  # a second delivery of any event would arrive meanwhile
            got = receiver.accepted()
        vault = open_vault(settings)
        try:
            with vault.engine.connect() as conn:
                workers = conn.execute(
                    text("SELECT DISTINCT lease_owner FROM webhook_delivery")
                ).all()
        finally:
            vault.dispose()
    assert len(workers) == 2  # both replicas delivered some
    assert len(got) == expected
    assert len({(d.id, d.headers["webhook-signature"]) for d in got}) == expected
    for secret in secrets:
        mine = []
        for delivery in got:
            try:
                mine.append(delivery.verified(secret))
            except Exception:  # another endpoint's signature
                continue
        names = [p["data"]["app"]["name"] for p in mine]
        assert names == [f"app {i}" for i in range(GRANTS)]  # in order, each once
    assert {json.loads(d.body)["type"] for d in got} == {"grant.approved"}
