"""``okap-server export`` / ``import``: a passphrase-protected backup between two vaults."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from okap_server.context import open_vault
from okap_server.settings import Settings
from okap_server.vault.models import ProviderKey
from tests.server.cli.conftest import CliRunner, settings_env
from tests.support.databases import database_url_for

PASSWORD = "a good long password"
PASSPHRASE = "seven words make a decent passphrase"
SECRET = "sk-proj-exportcli0000000000000000001"


@pytest.fixture
def second_vault(backend: str, tmp_path: Path) -> Iterator[Settings]:
    home = tmp_path / "second-home"
    with database_url_for(backend, home) as url:
        yield Settings(home=home, database_url=url)


def _use(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)


def test_export_then_import_into_another_vault(
    cli: CliRunner,
    cli_env: Settings,
    second_vault: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    assert cli("keys", "add", "openai", "--label", "work", stdin=SECRET).code == 0
    backup = tmp_path / "vault.okap"
    exported = cli("export", str(backup), "--passphrase-stdin", stdin=PASSPHRASE + "\n")
    assert exported.code == 0, exported.err
    assert "1 account(s), 1 key(s)" in exported.out
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert SECRET.encode() not in backup.read_bytes()
    assert cli("export", str(backup), stdin=PASSPHRASE).code == 2  # no silent overwrite

    _use(monkeypatch, second_vault)
    wrong = cli("import", str(backup), stdin="not the right passphrase\n")
    assert wrong.code == 2 and "wrong passphrase" in wrong.err and "nothing" in wrong.err
    assert not second_vault.home.exists() or not any(second_vault.home.iterdir())
    imported = cli("import", str(backup), "--passphrase-stdin", stdin=PASSPHRASE)
    assert imported.code == 0, imported.err
    vault = open_vault(second_vault)
    try:
        assert vault.keyring.current_id != open_vault_id(cli_env)
        with vault.session() as session:
            key = session.exec(select(ProviderKey)).one()
            assert vault.keys.reveal(key) == SECRET and key.label == "work"
    finally:
        vault.dispose()
    listing = cli("users", "list")
    assert "alice" in listing.out
    again = cli("import", str(backup), stdin=PASSPHRASE)
    assert again.code == 2 and "already" in again.err


def open_vault_id(settings: Settings) -> str:
    vault = open_vault(settings)
    try:
        return vault.keyring.current_id
    finally:
        vault.dispose()


def test_import_of_a_missing_or_foreign_file(cli: CliRunner, tmp_path: Path) -> None:
    missing = cli("import", str(tmp_path / "nope.okap"), stdin=PASSPHRASE)
    assert missing.code == 2 and "cannot read" in missing.err
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello")
    result = cli("import", str(foreign), stdin=PASSPHRASE)
    assert result.code == 2 and "not an okap backup file" in result.err


def test_export_refuses_a_short_passphrase(cli: CliRunner, tmp_path: Path) -> None:
    assert cli("users", "add", "alice", stdin=PASSWORD).code == 0
    result = cli("export", str(tmp_path / "b.okap"), stdin="short\n")
    assert result.code == 2 and "at least 12" in result.err
    assert not os.path.exists(tmp_path / "b.okap")
