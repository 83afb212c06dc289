"""``okap-server api-tokens``: a management token printed once on stdout, listed without
the token, revoked by id; and it opens /api/v1 until revoked. ``okap-server tokens
create``: a personal token, as consent would grant it."""

from __future__ import annotations

import httpx
from sqlmodel import Session, select

from okap_server.context import open_vault
from okap_server.db.engine import make_engine
from okap_server.grants.models import Grant
from okap_server.grants.tokens import (
    looks_like_management_token,
    looks_like_token,
    token_hash,
)
from okap_server.settings import Settings
from tests.server.cli.conftest import CliRunner
from tests.support.live import serve_vault

PASSWORD = "a good long password"


def test_create_list_revoke(cli: CliRunner, cli_env: Settings) -> None:
    assert cli("users", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n").code == 0
    assert cli("users", "add", "bob", "--password-stdin", stdin=PASSWORD + "\n").code == 0
    made = cli(
        "api-tokens", "create", "--user", "alice", "--name", "ci",
        "--scope", "grants:read", "--scope", "admin", "--expires-in", "30",
    )  # fmt: skip
    assert made.code == 0, made.err
    token = made.out.strip()
    assert looks_like_management_token(token) and token not in made.err
    refused = cli("api-tokens", "create", "--user", "bob", "--name", "x", "--scope", "admin")
    assert refused.code != 0 and "admin" in refused.err
    metrics = ("--scope", "metrics:read")  # every account's spend: admins only
    refused = cli("api-tokens", "create", "--user", "bob", "--name", "x", *metrics)
    assert refused.code != 0 and "metrics:read" in refused.err
    listed = cli("api-tokens", "list")
    assert listed.code == 0 and token not in listed.out
    assert "ci" in listed.out and "grants:read,admin" in listed.out
    token_id = listed.out.split()[0]
    vault = open_vault(cli_env)
    try:
        with serve_vault(vault) as url:
            headers = {"Authorization": f"Bearer {token}"}
            assert httpx.get(f"{url}/api/v1/grants", headers=headers).status_code == 200
            assert cli("api-tokens", "revoke", token_id).code == 0
            assert httpx.get(f"{url}/api/v1/grants", headers=headers).status_code == 401
    finally:
        vault.dispose()
    assert "revoked" in cli("api-tokens", "list").out


def test_tokens_create_mints_a_personal_token(cli: CliRunner, cli_env: Settings) -> None:
    assert cli("users", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n").code == 0
    missing_key = cli("tokens", "create", "--name", "job", "--provider", "openai")
    assert missing_key.code != 0 and "no openai key" in missing_key.err
    key = "sk-proj-CLIPERSONALkey0123456789abcdefghXYZ"
    added = cli("keys", "add", "openai", "--label", "k", "--secret-stdin", stdin=key + "\n")
    assert added.code == 0, added.err
    made = cli("tokens", "create", "--name", "job", "--provider", "openai", "--model", "gpt-4o")
    assert made.code == 0, made.err
    token = made.out.strip()
    assert looks_like_token(token) and key not in made.out + made.err
    engine = make_engine(cli_env.effective_database_url)
    try:
        with Session(engine) as session:
            grant = session.exec(select(Grant).where(Grant.token_hash == token_hash(token))).one()
    finally:
        engine.dispose()
    assert grant.flow == "personal" and grant.client_name == "job"
    assert grant.details[0]["models"] == ["gpt-4o"]
    assert grant.details[0]["limits"]["daily_spend"] == cli_env.default_limits.daily_spend
    bad = cli("tokens", "create", "--name", "x", "--details", '[{"type": "nope"}]')
    assert bad.code != 0 and "authorization_details[0].type" in bad.err
