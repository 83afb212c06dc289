"""A SIGKILL between a change's commit and its webhook's delivery loses no event: the
outbox row committed with the change, and the restarted vault delivers it, in order."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from okap_server.accounts.management_tokens import SCOPES
from okap_server.context import Vault
from okap_server.manage.webhooks import create_endpoint
from okap_server.settings import Settings
from tests.server.api.conftest import account, mint
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import ensure_key
from tests.support.live import free_port
from tests.support.process import server_env, vault_process
from tests.support.webhook_receiver import running_receiver


def test_sigkill_after_commit_loses_no_event(
    vault: Vault, settings: Settings, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    owner = account(vault, "kim", admin=True)
    ensure_key(vault, owner, "openai")
    token = mint(vault, "kim", list(SCOPES), admin=True)
    port = free_port()
    env = server_env(settings.model_copy(update={"port": port}), fake_upstream)
    env.update(
        OKAP_PUBLIC_URL=f"http://127.0.0.1:{port}",
        OKAP_WEBHOOK_RETRY_BASE_SECONDS="0.1",
        OKAP_WEBHOOK_RETRY_CAP_SECONDS="0.4",
    )
    log = tmp_path / "vault.log"
    with running_receiver() as receiver:
        endpoint, secret = create_endpoint(vault, owner, receiver.url, None)
        # The first vault's worker looks at the outbox once, at start, then not for a minute:
        # what it commits after that is still undelivered when it is killed.
        with vault_process({**env, "OKAP_WEBHOOK_POLL_SECONDS": "60"}, port, log) as process:
            time.sleep(0.3)  # past the worker's first look
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers=headers) as api:
                entry = {"type": "ai_model_access", "provider": "openai"}
                grants = []
                for name in ("one", "two"):
                    minted = api.post(
                        "/tokens", json={"name": name, "authorization_details": [entry]}
                    )
                    assert minted.status_code == 201, minted.text
                    grants.append(minted.json()["grant_id"])
                assert api.delete(f"/grants/{grants[0]}").status_code == 204
            os.kill(process.pid, signal.SIGKILL)  # every change above committed; nothing sent
            process.wait()
        assert receiver.hits == 0
        with vault_process({**env, "OKAP_WEBHOOK_POLL_SECONDS": "0.05"}, port, log):
            got = [d.verified(secret) for d in receiver.wait_for(3)]
            time.sleep(0.3)
            assert len(receiver.accepted()) == 3  # each once
    assert [(p["type"], p["data"]["grant_id"]) for p in got] == [
        ("grant.approved", grants[0]),
        ("grant.approved", grants[1]),
        ("grant.revoked", grants[0]),
    ]
    assert endpoint.id
