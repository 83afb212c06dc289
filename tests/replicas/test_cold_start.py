"""A team vault's first start: every replica starts at once on an empty database (as
``docker compose up`` does). They take turns migrating and storing the master key's check
value, and all come up serving the same vault."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from okap_server.vault.crypto import generate_master_key
from okap_server.vault.masterkey import encode_master_key
from tests.replicas.processes import running_replicas
from tests.support.databases import fresh_postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_replicas_started_together_on_an_empty_database_all_come_up(tmp_path: Path) -> None:
    with fresh_postgres_url() as url:
        env = {
            "OKAP_DATABASE_URL": url,
            "OKAP_MASTER_KEY": encode_master_key(generate_master_key()),
        }
        with running_replicas(["a", "b"], env, tmp_path) as replicas:
            for replica in replicas:
                ready = httpx.get(f"{replica.url}/readyz", timeout=10).json()
                assert ready["status"] == "ok", ready
                assert "Traceback" not in replica.log()
