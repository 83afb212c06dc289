"""Encrypted backups: round trip into a vault with another master key, and clean failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlmodel import select

from okap_server.accounts.models import Account
from okap_server.accounts.service import authenticate
from okap_server.clock import utcnow
from okap_server.context import Vault, open_vault
from okap_server.grants.models import Grant
from okap_server.grants.tokens import token_hash
from okap_server.manage.backup import BackupError, collect, open_backup, restore, seal_backup
from okap_server.manage.management_tokens import authenticate as authenticate_token
from okap_server.manage.management_tokens import create_token, revoke_token
from okap_server.settings import Settings
from okap_server.vault.models import ProviderKey
from tests.support.databases import database_url_for

PASSPHRASE = "correct horse battery staple"
SECRET = "sk-proj-backup-roundtrip-0123456789"
FAST_N = 2**14  # the smallest accepted cost, to keep tests quick


def _grant(vault: Vault, owner_id: str, key_id: str) -> str:
    with vault.session() as session:
        grant = Grant(
            account_id=owner_id,
            token_hash=token_hash("okap_backuptesttoken"),
            client_id="https://notes.example",
            client_name="Notes",
            flow="code",
            details=[{"type": "ai_model_access", "provider": "openai", "key_id": key_id}],
            expires_at=utcnow() + timedelta(days=30),
        )
        session.add(grant)
        session.commit()
        return grant.id


@pytest.fixture
def other_settings(tmp_path_factory: pytest.TempPathFactory, backend: str):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("other") / "okap-home"
    with database_url_for(backend, home) as url:
        yield Settings(home=home, database_url=url)


def test_export_import_round_trip_into_another_master_key(
    vault: Vault,
    owner_id: str,
    add_key: Callable[..., str],
    other_settings: Settings,
) -> None:
    key_id = add_key("openai", "work", SECRET)
    add_key("anthropic", "default", "sk-ant-api03-backup-000000000001")
    grant_id = _grant(vault, owner_id, key_id)
    with vault.session() as session:
        payload, summary = collect(session, vault.keys)
    assert (summary.accounts, summary.keys, summary.grants) == (1, 2, 1)
    data = seal_backup(payload, PASSPHRASE, n=FAST_N)
    assert SECRET.encode() not in data and b"argon2" not in data

    target = open_vault(other_settings)
    try:
        assert target.keyring.current_id != vault.keyring.current_id
        with target.session() as session:
            restored = restore(session, target.keyring, open_backup(data, PASSPHRASE))
        assert restored == summary
        with target.session() as session:
            keys = {k.label: k for k in session.exec(select(ProviderKey)).all()}
            assert target.keys.reveal(keys["work"]) == SECRET
            assert keys["work"].id == key_id
            assert keys["work"].master_key_id == target.keyring.current_id
            grant = session.get(Grant, grant_id)
            assert grant is not None and grant.details[0]["key_id"] == key_id
            # the password hash travelled: the owner signs in with the same password
            assert authenticate(session, "alice", "correct horse battery") is not None
    finally:
        target.dispose()


def test_wrong_passphrase_changes_nothing(
    vault: Vault, add_key: Callable[..., str], other_settings: Settings
) -> None:
    add_key("openai", "work", SECRET)
    with vault.session() as session:
        payload, _ = collect(session, vault.keys)
    data = seal_backup(payload, PASSPHRASE, n=FAST_N)
    with pytest.raises(BackupError, match="wrong passphrase"):
        open_backup(data, "not the passphrase at all")


def test_header_tampering_is_detected(vault: Vault, add_key: Callable[..., str]) -> None:
    add_key("openai", "work", SECRET)
    with vault.session() as session:
        payload, _ = collect(session, vault.keys)
    document = json.loads(seal_backup(payload, PASSPHRASE, n=FAST_N))
    document["created_at"] = "2020-01-01T00:00:00Z"
    with pytest.raises(BackupError, match="wrong passphrase, or the backup file is damaged"):
        open_backup(json.dumps(document).encode(), PASSPHRASE)
    document["kdf"]["n"] = 2**30
    with pytest.raises(BackupError, match="out of range"):
        open_backup(json.dumps(document).encode(), PASSPHRASE)
    with pytest.raises(BackupError, match="not an okap backup"):
        open_backup(b"PK\x03\x04 not json", PASSPHRASE)


def test_short_passphrase_is_refused() -> None:
    with pytest.raises(BackupError, match="at least 12"):
        seal_backup({}, "short")


def test_importing_into_a_vault_that_has_the_account_changes_nothing(
    vault: Vault, add_key: Callable[..., str]
) -> None:
    add_key("openai", "work", SECRET)
    with vault.session() as session:
        payload, _ = collect(session, vault.keys)
        before = len(session.exec(select(ProviderKey)).all())
    with vault.session() as session, pytest.raises(BackupError, match="already"):
        restore(session, vault.keyring, payload)
    with vault.session() as session:
        assert len(session.exec(select(ProviderKey)).all()) == before
        assert len(session.exec(select(Account)).all()) == 1


def test_management_tokens_travel_as_hashes_and_keep_working(
    vault: Vault, owner_id: str, other_settings: Settings
) -> None:
    with vault.session() as session:
        owner = session.get(Account, owner_id)
        assert owner is not None
        _, live = create_token(session, owner, name="ci", scopes=["grants:read"])
        gone_row, gone = create_token(session, owner, name="old", scopes=["keys:read"])
        session.commit()
        revoke_token(session, gone_row.id)
        session.commit()
        payload, summary = collect(session, vault.keys)
    assert summary.api_tokens == 2
    data = seal_backup(payload, PASSPHRASE, n=FAST_N)
    assert live.encode() not in data
    assert live not in json.dumps(payload) and token_hash(live) in json.dumps(payload)

    target = open_vault(other_settings)
    try:
        with target.session() as session:
            assert restore(session, target.keyring, open_backup(data, PASSPHRASE)) == summary
        with target.session() as session:
            principal = authenticate_token(session, live)
            assert principal is not None and principal.account_id == owner_id
            assert principal.scopes == frozenset({"grants:read"})
            assert authenticate_token(session, gone) is None  # revoked stays revoked
    finally:
        target.dispose()


def test_a_backup_from_before_management_tokens_restores_with_none(
    vault: Vault, owner_id: str, other_settings: Settings
) -> None:
    with vault.session() as session:
        payload, _ = collect(session, vault.keys)
    del payload["management_tokens"]
    target = open_vault(other_settings)
    try:
        with target.session() as session:
            restored = restore(session, target.keyring, payload)
        assert restored.accounts == 1 and restored.api_tokens == 0
    finally:
        target.dispose()
