"""okap as the benchmark runs it: a real vault home, real grants, a real server process.

``seed`` opens a fresh vault (migrations, master key), adds an account and an encrypted
OpenAI key, and inserts grants like the ones consent produces: a model allow-list, a rate
limit high enough not to trip, spend limits, the audit on (it always is). Extra grants for
the scale check go in with one bulk insert. The tokens are written to a 0600 file in the
vault's home for the load generator; they are never printed.

``app_from_env`` is the factory for the multi-worker mode (``uvicorn --factory --workers N``);
single-worker runs use the real ``okap-server serve`` command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from okap_server.accounts.service import create_account
from okap_server.clock import new_id, utcnow
from okap_server.context import Vault, open_vault
from okap_server.grants.models import Grant
from okap_server.grants.tokens import new_access_token, token_hash
from okap_server.settings import load_settings

BENCH_KEY = "sk-bench-real-key-0123456789abcdef"
MODELS = ["gpt-4o-mini", "gpt-4.1*"]
LIMITS: dict[str, Any] = {
    "monthly_spend": 100_000.0,
    "daily_spend": 10_000.0,
    "total_spend": None,
    "requests_per_minute": 10_000_000,
    "requests_per_day": 1_000_000_000,
    "tokens_per_request": None,
}


@dataclass(frozen=True)
class Seeded:
    env: dict[str, str]
    tokens_file: Path
    grants: int


def vault_env(home: Path, upstream: str, database_url: str | None) -> dict[str, str]:
    env = {
        "OKAP_HOME": str(home),
        "OKAP_UPSTREAM_OPENAI": f"{upstream}/v1",
        "OKAP_LOG_LEVEL": "WARNING",
    }
    if database_url:
        env["OKAP_DATABASE_URL"] = database_url
    return env


def seed(
    home: Path,
    upstream: str,
    *,
    grants: int = 1,
    database_url: str | None = None,
    limits: dict[str, Any] | None = None,
) -> Seeded:
    """A vault with ``grants`` grants, all alike; ``limits`` override the bench's."""
    home.mkdir(parents=True, exist_ok=True)
    env = vault_env(home, upstream, database_url)
    overrides: dict[str, Any] = {"home": home, "upstreams": {"openai": f"{upstream}/v1"}}
    if database_url:
        overrides["database_url"] = database_url
    vault = open_vault(load_settings(**overrides))
    try:
        with vault.session() as session:
            account = create_account(session, "bench", "bench horse battery staple")
            session.commit()
            key = vault.keys.add(
                session, account_id=account.id, provider="openai", label="bench", secret=BENCH_KEY
            )
            session.commit()
            account_id, key_id = account.id, key.id
        entry = {
            "type": "ai_model_access",
            "provider": "openai",
            "models": MODELS,
            "capabilities": ["chat"],
            "limits": {**LIMITS, **(limits or {})},
            "expires": None,
            "reason": "benchmark",
            "key_id": key_id,
        }
        tokens = [new_access_token() for _ in range(grants)]
        expires = utcnow() + timedelta(days=30)
        rows = [
            Grant(
                id=new_id("grt_"),
                account_id=account_id,
                token_hash=token_hash(token),
                client_id="https://bench.example",
                client_name=f"Bench App {i}",
                flow="okap",
                details=[entry],
                expires_at=expires,
            ).model_dump()
            for i, token in enumerate(tokens)
        ]
        with vault.engine.begin() as conn:
            for start in range(0, len(rows), 1000):
                batch = rows[start : start + 1000]
                conn.execute(Grant.__table__.insert(), batch)  # type: ignore[attr-defined]
    finally:
        vault.dispose()
    tokens_file = home / "bench-tokens.txt"
    fd = os.open(tokens_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(tokens) + "\n")
    return Seeded(env=env, tokens_file=tokens_file, grants=grants)


def open_vault_from_env() -> Vault:
    return open_vault(load_settings(), migrate=False)


def app_from_env() -> Any:
    """For ``uvicorn --factory bench.okap_target:app_from_env --workers N`` (one per worker)."""
    from okap_server.app import create_app

    return create_app(open_vault_from_env())
