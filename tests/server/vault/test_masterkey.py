"""The master key: generated once, never silently replaced, and checked before use."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

import pytest
from pydantic import SecretStr
from sqlmodel import select

from okap_server.context import Vault, open_vault
from okap_server.settings import Settings
from okap_server.vault.crypto import generate_master_key
from okap_server.vault.masterkey import (
    MasterKeyError,
    encode_master_key,
    pending_key_file,
    write_key_file,
)
from okap_server.vault.models import ProviderKey
from okap_server.vault.rotation import rotate

SECRET = "sk-ant-api03-masterkeytest-0123456789"


def _rows(vault: Vault) -> list[tuple[str, bytes, bytes]]:
    with vault.session() as session:
        return [(k.id, k.nonce, k.ciphertext) for k in session.exec(select(ProviderKey)).all()]


def test_first_start_writes_an_owner_only_key_file(vault: Vault) -> None:
    key_file = vault.settings.master_key_file
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(vault.settings.home.stat().st_mode) == 0o700


def test_missing_key_file_stops_start_and_makes_no_new_key(
    vault: Vault, settings: Settings, add_key: Callable[..., str]
) -> None:
    add_key("anthropic", "work", SECRET)
    before = _rows(vault)
    vault.dispose()
    saved = settings.master_key_file.read_text()
    settings.master_key_file.unlink()
    with pytest.raises(MasterKeyError, match="master key is missing"):
        open_vault(settings)
    assert not settings.master_key_file.exists()  # no fresh key orphaning the secrets
    settings.master_key_file.write_text(saved)
    restored = open_vault(settings)
    try:
        assert _rows(restored) == before
    finally:
        restored.dispose()


def test_truncated_key_file_is_a_clear_error(vault: Vault, settings: Settings) -> None:
    vault.dispose()
    text = settings.master_key_file.read_text()
    settings.master_key_file.write_text(text[:20])
    with pytest.raises(MasterKeyError, match=r"master key file .* 32 bytes"):
        open_vault(settings)


def test_wrong_key_stops_start_and_leaves_data_intact(
    vault: Vault, settings: Settings, add_key: Callable[..., str]
) -> None:
    add_key("anthropic", "work", SECRET)
    before = _rows(vault)
    vault.dispose()
    wrong = settings.model_copy(
        update={"master_key": SecretStr(encode_master_key(generate_master_key()))}
    )
    with pytest.raises(MasterKeyError, match="does not match"):
        open_vault(wrong)
    again = open_vault(settings)
    try:
        assert _rows(again) == before
        with again.session() as session:
            row = session.exec(select(ProviderKey)).one()
            assert again.keys.reveal(row) == SECRET
    finally:
        again.dispose()


def test_start_finishes_a_rotation_interrupted_after_commit(
    vault: Vault, settings: Settings, add_key: Callable[..., str]
) -> None:
    add_key("openai", "work", SECRET)
    new_key = generate_master_key()
    # The rotation wrote its pending key and committed, then the process died before the swap.
    write_key_file(pending_key_file(settings), new_key)
    with vault.session() as session:
        rotate(session, vault.keyring, new_key)
    vault.dispose()
    recovered = open_vault(settings)
    try:
        assert not pending_key_file(settings).exists()
        assert settings.master_key_file.read_text().strip() == encode_master_key(new_key)
        with recovered.session() as session:
            assert recovered.keys.reveal(session.exec(select(ProviderKey)).one()) == SECRET
    finally:
        recovered.dispose()


def test_a_rotation_that_never_committed_leaves_the_old_key(
    vault: Vault, settings: Settings, add_key: Callable[..., str]
) -> None:
    add_key("openai", "work", SECRET)
    old_key = settings.master_key_file.read_text()
    pending = pending_key_file(settings)
    write_key_file(pending, generate_master_key())
    vault.dispose()
    fresh = open_vault(settings)  # a fresh pending file may belong to a running rotation
    fresh.dispose()
    assert pending.exists() and settings.master_key_file.read_text() == old_key
    hour_ago = pending.stat().st_mtime - 7200
    os.utime(pending, (hour_ago, hour_ago))
    stale = open_vault(settings)
    try:
        assert not pending.exists()
        assert settings.master_key_file.read_text() == old_key
        with stale.session() as session:
            assert stale.keys.reveal(session.exec(select(ProviderKey)).one()) == SECRET
    finally:
        stale.dispose()


def test_master_key_from_environment_is_used_and_no_file_written(settings: Settings) -> None:
    key = encode_master_key(generate_master_key())
    env_settings = settings.model_copy(update={"master_key": SecretStr(key)})
    opened = open_vault(env_settings)
    opened.dispose()
    assert not settings.master_key_file.exists()
    with pytest.raises(MasterKeyError, match="not a valid master key"):
        open_vault(settings.model_copy(update={"master_key": SecretStr("not a key!")}))
