"""``okap-server api-tokens``: a management token printed once on stdout, listed without
the token, revoked by id; and it opens /api/v1 until revoked."""

from __future__ import annotations

import httpx

from okap_server.authorization.tokens import looks_like_management_token
from okap_server.context import open_vault
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
