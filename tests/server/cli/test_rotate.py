"""``okap-server rotate-master-key`` from the command line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlmodel import select

from okap_server.context import open_vault
from okap_server.settings import Settings
from okap_server.vault.crypto import generate_master_key
from okap_server.vault.masterkey import MasterKeyError, encode_master_key, pending_key_file
from okap_server.vault.models import ProviderKey
from tests.server.cli.conftest import CliRunner

PASSWORD = "a good long password"
KEYS = {"openai": "sk-proj-rotatecli000000000000001", "anthropic": "sk-ant-rotatecli00000000002"}


def _stock(cli: CliRunner) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    for provider, secret in KEYS.items():
        assert cli("keys", "add", provider, stdin=secret).code == 0


def _revealed(settings: Settings) -> dict[str, str]:
    vault = open_vault(settings)
    try:
        with vault.session() as session:
            return {k.provider: vault.keys.reveal(k) for k in session.exec(select(ProviderKey))}
    finally:
        vault.dispose()


def test_rotation_with_a_key_file(cli: CliRunner, cli_env: Settings) -> None:
    _stock(cli)
    old_key = cli_env.master_key_file.read_text()
    result = cli("rotate-master-key")
    assert result.code == 0, result.err
    assert "2 key(s) re-encrypted" in result.out and "updated" in result.out
    new_key = cli_env.master_key_file.read_text()
    assert new_key != old_key and new_key.strip() not in result.out
    assert stat.S_IMODE(cli_env.master_key_file.stat().st_mode) == 0o600
    assert not pending_key_file(cli_env).exists()
    assert _revealed(cli_env) == KEYS
    doctor = cli("doctor", "--offline")
    assert doctor.code == 0, doctor.out


def test_rotation_with_the_key_in_the_environment(
    cli: CliRunner, cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_key = encode_master_key(generate_master_key())
    monkeypatch.setenv("OKAP_MASTER_KEY", env_key)
    _stock(cli)
    result = cli("rotate-master-key")
    assert result.code == 0, result.err
    printed = result.out.strip()
    assert len(printed.splitlines()) == 1 and printed != env_key
    assert "set OKAP_MASTER_KEY" in result.err and env_key not in result.err
    assert not cli_env.master_key_file.exists()
    with pytest.raises(MasterKeyError):
        open_vault(cli_env.model_copy(update={"master_key": SecretStr(env_key)}))
    assert _revealed(cli_env.model_copy(update={"master_key": SecretStr(printed)})) == KEYS


def test_rotation_to_a_new_key_file(
    cli: CliRunner, cli_env: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OKAP_MASTER_KEY", encode_master_key(generate_master_key()))
    _stock(cli)
    target = tmp_path / "new.key"
    result = cli("rotate-master-key", "--new-key-file", str(target))
    assert result.code == 0 and str(target) in result.out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    new_key = target.read_text().strip()
    assert new_key not in result.out + result.err
    assert _revealed(cli_env.model_copy(update={"master_key": SecretStr(new_key)})) == KEYS
    monkeypatch.setenv("OKAP_MASTER_KEY", new_key)
    again = cli("rotate-master-key", "--new-key-file", str(target))
    assert again.code == 2 and "already exists" in again.err
    assert target.read_text().strip() == new_key


def test_a_corrupt_row_aborts_rotation(cli: CliRunner, cli_env: Settings) -> None:
    _stock(cli)
    vault = open_vault(cli_env)
    with vault.session() as session:
        row = session.exec(select(ProviderKey).where(ProviderKey.provider == "anthropic")).one()
        row.nonce = bytes(12)
        session.add(row)
        session.commit()
    vault.dispose()
    key_before = cli_env.master_key_file.read_bytes()
    result = cli("rotate-master-key")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "does not decrypt" in result.err and "nothing was changed" in result.err
    assert cli_env.master_key_file.read_bytes() == key_before
    assert not pending_key_file(cli_env).exists()


def test_rolling_rotation_with_no_downtime(
    cli: CliRunner, cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Team vaults: servers restart one by one with the new key and the previous one, so
    every server can read every secret at every moment; then --reseal retires the old key."""
    old = encode_master_key(generate_master_key())
    monkeypatch.setenv("OKAP_MASTER_KEY", old)
    _stock(cli)
    generated = cli("rotate-master-key", "--generate-key")
    assert generated.code == 0, generated.err
    new = generated.out.strip()
    assert new != old and "OKAP_MASTER_KEY_PREVIOUS" in generated.err
    # A server still on the old key alone and one restarted with new + previous both work.
    still_old = cli_env.model_copy(update={"master_key": SecretStr(old)})
    both = cli_env.model_copy(
        update={"master_key": SecretStr(new), "master_key_previous": SecretStr(old)}
    )
    assert _revealed(still_old) == KEYS
    assert _revealed(both) == KEYS
    monkeypatch.setenv("OKAP_MASTER_KEY", new)
    monkeypatch.setenv("OKAP_MASTER_KEY_PREVIOUS", old)
    resealed = cli("rotate-master-key", "--reseal")
    assert resealed.code == 0, resealed.err
    assert "resealed 2 key(s)" in resealed.out
    assert new not in resealed.out + resealed.err and old not in resealed.out + resealed.err
    # During the roll-out both keys still open the vault; afterwards the new key alone does.
    assert _revealed(both) == KEYS
    assert _revealed(cli_env.model_copy(update={"master_key": SecretStr(new)})) == KEYS
    with pytest.raises(MasterKeyError):
        open_vault(still_old)


def test_reseal_needs_both_keys(
    cli: CliRunner, cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OKAP_MASTER_KEY", encode_master_key(generate_master_key()))
    _stock(cli)
    result = cli("rotate-master-key", "--reseal")
    assert result.code != 0 and "OKAP_MASTER_KEY_PREVIOUS" in result.err
