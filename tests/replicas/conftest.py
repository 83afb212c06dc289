"""Two real replicas of one team vault: one fresh PostgreSQL database, one master key.

The test process opens the same vault too (``team.vault``): it migrates the database before
the replicas start, and lets tests make grants and read the books directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from okap_server.context import Vault, open_vault
from okap_server.settings import Settings
from okap_server.vault.crypto import generate_master_key
from okap_server.vault.masterkey import encode_master_key
from tests.replicas.processes import Replica, running_replicas
from tests.support.databases import fresh_postgres_url
from tests.support.fake_upstream import FakeUpstream


@dataclass
class Team:
    vault: Vault
    env: dict[str, str]
    workdir: Path
    a: Replica
    b: Replica


@pytest.fixture(scope="session")
def team(
    tmp_path_factory: pytest.TempPathFactory, fake_upstream_server: FakeUpstream
) -> Iterator[Team]:
    workdir = tmp_path_factory.mktemp("team")
    master_key = encode_master_key(generate_master_key())
    with fresh_postgres_url() as url:
        settings = Settings(
            home=workdir / "home-test",
            database_url=url,
            master_key=SecretStr(master_key),
            upstreams=fake_upstream_server.upstreams(),
        )
        vault = open_vault(settings)
        env = {
            "OKAP_DATABASE_URL": url,
            "OKAP_MASTER_KEY": master_key,
            "OKAP_PROXY_AUDIT_FLUSH_SECONDS": "0.05",
            "OKAP_DEVICE_POLL_INTERVAL_SECONDS": "1",
            **{
                f"OKAP_UPSTREAM_{provider.upper()}": upstream
                for provider, upstream in fake_upstream_server.upstreams().items()
            },
        }
        try:
            with running_replicas(["a", "b"], env, workdir) as (a, b):
                yield Team(vault, env, workdir, a, b)
        finally:
            vault.dispose()
