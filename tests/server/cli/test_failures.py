"""Damaged key files and a wrong environment give one clear line, and change nothing."""

from __future__ import annotations

import pytest

from okap_server.settings import Settings
from tests.server.cli.conftest import CliRunner

PASSWORD = "a good long password"


@pytest.fixture
def stocked(cli: CliRunner) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    assert cli("keys", "add", "openai", stdin="sk-proj-failure0000000000000001").code == 0


def test_truncated_key_file(cli: CliRunner, cli_env: Settings, stocked: None) -> None:
    key_file = cli_env.master_key_file
    key_file.write_text(key_file.read_text()[:17])
    damaged = key_file.read_bytes()
    for argv in (["keys", "list"], ["serve"], ["rotate-master-key"], ["users", "list"]):
        result = cli(*argv)
        assert result.code == 2, argv
        assert result.err.count("\n") == 1 and str(key_file) in result.err
        assert "truncated or damaged" in result.err
    assert key_file.read_bytes() == damaged  # not "repaired" with a new key


def test_missing_key_file_with_stored_keys(
    cli: CliRunner, cli_env: Settings, stocked: None
) -> None:
    saved = cli_env.master_key_file.read_text()
    cli_env.master_key_file.unlink()
    result = cli("keys", "add", "anthropic", stdin="sk-ant-api03-failure000000000002")
    assert result.code == 2 and "master key is missing" in result.err
    assert not cli_env.master_key_file.exists()
    cli_env.master_key_file.write_text(saved)
    listing = cli("keys", "list")
    assert listing.code == 0 and "anthropic" not in listing.out and "openai" in listing.out


def test_malformed_master_key_in_environment(
    cli: CliRunner, stocked: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OKAP_MASTER_KEY", "not-base64-!!")
    result = cli("keys", "list")
    assert result.code == 2 and result.err.startswith("okap-server: OKAP_MASTER_KEY")
    assert "not-base64" not in result.err
