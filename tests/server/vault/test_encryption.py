"""Provider keys are AES-256-GCM encrypted at rest and bound to their row."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from okap_server.context import Vault
from okap_server.db.engine import sqlite_path
from okap_server.vault.crypto import DecryptionError, KeyRing, Sealed, generate_master_key
from okap_server.vault.keys import key_hint
from okap_server.vault.models import ProviderKey

SECRET = "sk-proj-PLAINTEXTcanary0123456789abcdefXYZ7fQ"


def _owner_id(vault: Vault) -> str:
    from okap_server.accounts.service import find_account

    with vault.session() as session:
        account = find_account(session, "alice")
        assert account is not None
        return account.id


def _add(vault: Vault, account_id: str, provider: str, label: str, secret: str) -> str:
    with vault.session() as session:
        shown = vault.keys.add(
            session, account_id=account_id, provider=provider, label=label, secret=secret
        )
        session.commit()
    return shown.id


def test_database_file_never_holds_a_key_in_plaintext(
    vault: Vault, owner: tuple[str, str], backend: str
) -> None:
    account_id = _owner_id(vault)
    key_id = _add(vault, account_id, "openai", "work", SECRET)
    canary = SECRET.encode()
    with vault.session() as session:
        row = session.get(ProviderKey, key_id)
        assert row is not None
        assert canary not in row.ciphertext and row.hint == key_hint(SECRET)
        assert vault.keys.reveal(row) == SECRET
    if backend == "sqlite":
        db = sqlite_path(vault.settings.effective_database_url)
        assert db is not None
        # While connections are open the new rows live in the WAL; read every file.
        files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
        assert db in files
        for path in files:
            data = path.read_bytes()
            assert canary not in data, f"plaintext key found in {path.name}"
            assert SECRET[8:24].encode() not in data
        vault.dispose()  # checkpoints the WAL into the main file
        for path in db.parent.iterdir():
            if path.name.startswith(db.name):
                assert canary not in path.read_bytes()
    else:
        with vault.engine.connect() as connection:
            dump = connection.execute(
                text("SELECT string_agg(t::text, '|') FROM provider_key t")
            ).scalar_one()
        assert dump and SECRET not in dump and SECRET[8:24] not in dump


def test_ciphertext_moved_to_another_row_does_not_decrypt(
    vault: Vault, owner: tuple[str, str]
) -> None:
    account_id = _owner_id(vault)
    first = _add(vault, account_id, "openai", "personal", SECRET)
    second = _add(vault, account_id, "openai", "work", "sk-other-key-0000000000000000")
    with vault.session() as session:
        a = session.get(ProviderKey, first)
        b = session.get(ProviderKey, second)
        assert a is not None and b is not None
        # An attacker with write access copies key A's ciphertext onto row B.
        b.master_key_id, b.nonce, b.ciphertext = a.master_key_id, a.nonce, a.ciphertext
        session.add(b)
        session.commit()
    with vault.session() as session:
        moved = session.get(ProviderKey, second)
        assert moved is not None
        with pytest.raises(DecryptionError):
            vault.keys.reveal(moved)
        original = session.get(ProviderKey, first)
        assert original is not None and vault.keys.reveal(original) == SECRET


def test_ciphertext_moved_to_another_provider_does_not_decrypt(
    vault: Vault, owner: tuple[str, str]
) -> None:
    account_id = _owner_id(vault)
    key_id = _add(vault, account_id, "openai", "work", SECRET)
    with vault.session() as session:
        row = session.get(ProviderKey, key_id)
        assert row is not None
        row.provider = "groq"  # same id and owner, other provider
        session.add(row)
        session.commit()
        with pytest.raises(DecryptionError):
            vault.keys.reveal(row)


def test_each_seal_uses_a_fresh_nonce_and_names_its_key() -> None:
    ring = KeyRing(generate_master_key())
    one = ring.seal(b"same secret", b"aad")
    two = ring.seal(b"same secret", b"aad")
    assert len(one.nonce) == 12 and one.nonce != two.nonce
    assert one.ciphertext != two.ciphertext
    assert one.master_key_id == ring.current_id
    assert ring.open(one, b"aad") == b"same secret"


def test_tampered_ciphertext_and_unknown_key_fail() -> None:
    ring = KeyRing(generate_master_key())
    sealed = ring.seal(b"secret", b"aad")
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(DecryptionError):
        ring.open(Sealed(sealed.master_key_id, sealed.nonce, flipped), b"aad")
    with pytest.raises(DecryptionError):
        KeyRing(generate_master_key()).open(sealed, b"aad")


def test_rotated_ring_opens_old_and_seals_new() -> None:
    old = KeyRing(generate_master_key())
    sealed = old.seal(b"secret", b"aad")
    new = old.rotated_to(generate_master_key())
    assert new.current_id != old.current_id
    assert new.open(sealed, b"aad") == b"secret"
    assert new.seal(b"x", b"aad").master_key_id == new.current_id


def test_master_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        KeyRing(b"short")


def test_hints_never_reveal_the_key() -> None:
    assert key_hint("sk-proj-abcdefghijklmnopx7fQ") == "sk-...x7fQ"
    assert key_hint("AIzaSyA-1234567890abcdefghij").endswith("ghij")
    hint = key_hint(SECRET)
    assert len(hint) <= 12 and SECRET[4:-4] not in hint
