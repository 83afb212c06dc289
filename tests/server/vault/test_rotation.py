"""Rotating the master key re-encrypts every secret in one transaction."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import Session, col, select

from okap_server.accounts.service import create_account
from okap_server.context import Vault, open_vault
from okap_server.settings import Settings
from okap_server.vault.crypto import generate_master_key
from okap_server.vault.masterkey import (
    MasterKeyError,
    decode_master_key,
    load_keyring,
    pending_key_file,
    write_key_file,
)
from okap_server.vault.models import ProviderKey
from okap_server.vault.rotation import RotationError, rotate, rotate_with_key_file

SECRETS = {
    ("openai", "personal"): "sk-proj-rotation-personal-000000001",
    ("openai", "work"): "sk-proj-rotation-work-0000000000002",
    ("anthropic", "default"): "sk-ant-api03-rotation-00000000003",
    ("google", "default"): "AIzaSyRotationGoogleKey00000000004",
}


def _store_all(add_key: Callable[..., str]) -> None:
    for (provider, label), secret in SECRETS.items():
        add_key(provider, label, secret)


def _sealed(session: Session) -> list[tuple[str, str, bytes, bytes]]:
    rows = session.exec(select(ProviderKey)).all()
    return sorted((k.id, k.master_key_id, k.nonce, k.ciphertext) for k in rows)


def _revealed(vault: Vault) -> dict[tuple[str, str], str]:
    with vault.session() as session:
        rows = session.exec(select(ProviderKey)).all()
        return {(k.provider, k.label): vault.keys.reveal(k) for k in rows}


def test_rotation_keeps_every_key_decryptable(
    vault: Vault, settings: Settings, add_key: Callable[..., str]
) -> None:
    _store_all(add_key)
    with vault.session() as session:
        bob = create_account(session, "bob", "bob's long password")
        vault.keys.add(
            session, account_id=bob.id, provider="groq", label="team", secret="gsk_bobkey0000000001"
        )
        session.commit()
    old_id = vault.keyring.current_id
    with vault.session() as session:
        result = rotate_with_key_file(settings, session, vault.keyring)
    assert result.resealed == len(SECRETS) + 1
    assert not pending_key_file(settings).exists()
    vault.dispose()

    reopened = open_vault(settings)
    try:
        assert reopened.keyring.current_id == result.new_key_id != old_id
        expected = {**SECRETS, ("groq", "team"): "gsk_bobkey0000000001"}
        assert _revealed(reopened) == expected
        with reopened.session() as session:
            ids = {k.master_key_id for k in session.exec(select(ProviderKey)).all()}
        assert ids == {result.new_key_id}
    finally:
        reopened.dispose()


def test_old_key_no_longer_opens_the_vault(
    vault: Vault, settings: Settings, add_key: Callable[..., str]
) -> None:
    _store_all(add_key)
    old_key = decode_master_key(settings.master_key_file.read_text(), "test")
    with vault.session() as session:
        rotate_with_key_file(settings, session, vault.keyring)
    write_key_file(settings.master_key_file, old_key)
    with pytest.raises(MasterKeyError, match="does not match"):
        load_keyring(settings, vault.engine, create=False)


def test_a_row_that_does_not_decrypt_aborts_rotation_unchanged(
    vault: Vault, settings: Settings, add_key: Callable[..., str]
) -> None:
    _store_all(add_key)
    with vault.session() as session:
        broken = session.exec(select(ProviderKey).where(ProviderKey.label == "work")).one()
        broken.ciphertext = b"\x00" * len(broken.ciphertext)
        session.add(broken)
        session.commit()
    with vault.session() as session:
        before = sorted(
            (k.id, k.master_key_id, k.nonce, k.ciphertext)
            for k in session.exec(select(ProviderKey))
        )
    key_before = settings.master_key_file.read_bytes()
    with vault.session() as session, pytest.raises(RotationError, match="does not decrypt"):
        rotate_with_key_file(settings, session, vault.keyring)
    with vault.session() as session:
        after = sorted(
            (k.id, k.master_key_id, k.nonce, k.ciphertext)
            for k in session.exec(select(ProviderKey))
        )
    assert after == before
    assert settings.master_key_file.read_bytes() == key_before
    assert not pending_key_file(settings).exists()
    # The vault still opens with its old key.
    assert load_keyring(settings, vault.engine, create=False).current_id == vault.keyring.current_id


def test_rotation_is_one_transaction(vault: Vault, add_key: Callable[..., str]) -> None:
    """A failure after some rows were resealed rolls all of them back."""
    _store_all(add_key)
    with vault.session() as session:
        last = session.exec(select(ProviderKey).order_by(col(ProviderKey.id).desc())).first()
        assert last is not None
        last.nonce = b"\x01" * 12
        session.add(last)
        session.commit()
    with vault.session() as session, pytest.raises(RotationError):
        rotate(session, vault.keyring, generate_master_key())
    with vault.session() as session:
        ids = {k.master_key_id for k in session.exec(select(ProviderKey)).all()}
    assert ids == {vault.keyring.current_id}
