"""Encrypted, passphrase-protected backups: accounts, keys and grants, portable between vaults.

The file is JSON: a header naming the KDF (scrypt, RFC 7914) and its parameters, and one
AES-256-GCM ciphertext. The header is the AEAD's associated data, so it cannot be altered.
Provider keys are decrypted with the vault's master key and travel only inside that
ciphertext; import seals them again under the importing vault's master key, keeping row ids
so grants still point at their keys.

Tokens travel as the vault stores them, as SHA-256 hashes only: the grants' ``okap_``
tokens and the ``okapm_`` management tokens (with their scopes, expiry, last use and
revocation). A hash is no credential, and it does not depend on the master key, so the
scripts and apps of a vault moved elsewhere keep working with the tokens they hold, and a
revoked token stays revoked. A backup made before management tokens existed restores with
none.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlmodel import Session, SQLModel, col, select

from okap_server.accounts.models import Account, ManagementToken
from okap_server.accounts.setup import close_setup, is_claimed
from okap_server.audit.events import record_event
from okap_server.clock import isoformat_z, utcnow
from okap_server.grants.counters import SpendCounter
from okap_server.grants.models import Grant
from okap_server.vault.crypto import DecryptionError, KeyRing
from okap_server.vault.keys import KeyStore, associated_data
from okap_server.vault.models import ProviderKey

FORMAT = "okap-backup"
VERSION = 1
MIN_PASSPHRASE_LENGTH = 12
# scrypt cost: ~0.3 s and 128 MiB on a laptop (RFC 7914 §2 suggests N=2^20 for files;
# 2^17 keeps import usable on small servers). Bounds guard against a hostile header.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
_N_RANGE, _R_RANGE, _P_RANGE = (2**14, 2**22), (1, 32), (1, 16)


class BackupError(Exception):
    """The backup cannot be written or read; the message holds no secret."""


@dataclass(frozen=True)
class BackupSummary:
    accounts: int
    keys: int
    grants: int
    api_tokens: int = 0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise BackupError("not an okap backup file (a field is missing)")
    return base64.b64decode(text.encode(), validate=True)


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _rows(session: Session, model: type[SQLModel]) -> list[dict[str, Any]]:
    return [row.model_dump(mode="json") for row in session.exec(select(model)).all()]


def collect(session: Session, keys: KeyStore) -> tuple[dict[str, Any], BackupSummary]:
    """Everything a backup holds, with provider keys decrypted."""
    secrets_out = []
    for key in session.exec(select(ProviderKey).order_by(col(ProviderKey.id))).all():
        try:
            secret = keys.reveal(key)
        except (DecryptionError, UnicodeDecodeError):
            raise BackupError(
                f"key {key.id} ({key.provider}, {key.label!r}) does not decrypt; nothing was "
                "written. Run `okap-server doctor`"
            ) from None
        row = key.model_dump(mode="json", exclude={"master_key_id", "nonce", "ciphertext"})
        secrets_out.append({**row, "secret": secret})
    payload = {
        "accounts": _rows(session, Account),
        "keys": secrets_out,
        "grants": _rows(session, Grant),
        "spend_counters": _rows(session, SpendCounter),
        "management_tokens": _rows(session, ManagementToken),
    }
    summary = BackupSummary(
        len(payload["accounts"]),
        len(payload["keys"]),
        len(payload["grants"]),
        len(payload["management_tokens"]),
    )
    return payload, summary


def seal_backup(payload: dict[str, Any], passphrase: str, *, n: int = SCRYPT_N) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise BackupError(f"a backup passphrase needs at least {MIN_PASSPHRASE_LENGTH} characters")
    salt, nonce = os.urandom(16), os.urandom(12)
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": isoformat_z(utcnow()),
        "kdf": {"name": "scrypt", "n": n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt)},
        "cipher": "AES-256-GCM",
        "nonce": _b64(nonce),
    }
    key = _derive(passphrase, salt, n, SCRYPT_R, SCRYPT_P)
    plaintext = json.dumps(payload, separators=(",", ":")).encode()
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _aad(header))
    return json.dumps({**header, "ciphertext": _b64(ciphertext)}, indent=1).encode() + b"\n"


def open_backup(data: bytes, passphrase: str) -> dict[str, Any]:
    """The payload of a backup file; BackupError for a wrong passphrase or a damaged file."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError
        header = {k: v for k, v in document.items() if k != "ciphertext"}
        kdf = header["kdf"]
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        salt, nonce = _unb64(kdf["salt"]), _unb64(header["nonce"])
        ciphertext = _unb64(document["ciphertext"])
    except (ValueError, KeyError, TypeError):
        raise BackupError("not an okap backup file") from None
    if header.get("version") != VERSION or kdf.get("name") != "scrypt":
        raise BackupError(f"unsupported backup version {header.get('version')!r}")
    if not (
        _N_RANGE[0] <= n <= _N_RANGE[1]
        and n & (n - 1) == 0
        and _R_RANGE[0] <= r <= _R_RANGE[1]
        and _P_RANGE[0] <= p <= _P_RANGE[1]
    ):
        raise BackupError("the backup's key derivation parameters are out of range")
    try:
        plaintext = AESGCM(_derive(passphrase, salt, n, r, p)).decrypt(
            nonce, ciphertext, _aad(header)
        )
    except (InvalidTag, ValueError):
        raise BackupError(
            "wrong passphrase, or the backup file is damaged; nothing was changed"
        ) from None
    payload: dict[str, Any] = json.loads(plaintext)
    return payload


def _conflicts(session: Session, payload: dict[str, Any]) -> str | None:
    for row in payload.get("accounts", []):
        if session.get(Account, row["id"]) is not None:
            return f"account {row['username']!r} is already in this vault"
        if session.exec(select(Account).where(Account.username == row["username"])).first():
            return f"an account named {row['username']!r} already exists in this vault"
    for row in payload.get("keys", []):
        if session.get(ProviderKey, row["id"]) is not None:
            return f"key {row['id']} is already in this vault"
    for row in payload.get("grants", []):
        if session.get(Grant, row["id"]) is not None:
            return f"grant {row['id']} is already in this vault"
    for row in payload.get("management_tokens", []):
        if session.get(ManagementToken, row["id"]) is not None:
            return f"API token {row['id']} is already in this vault"
    return None


def restore(session: Session, keyring: KeyRing, payload: dict[str, Any]) -> BackupSummary:
    """Add a backup's rows to this vault in the session's transaction and commit.

    Refuses (changing nothing) when an account, key or grant is already present."""
    try:
        conflict = _conflicts(session, payload)
    except (KeyError, TypeError):
        raise BackupError("the backup's contents are damaged; nothing was imported") from None
    if conflict:
        raise BackupError(f"{conflict}; nothing was imported")
    was_empty = not is_claimed(session)
    try:
        accounts = [Account.model_validate(row) for row in payload.get("accounts", [])]
        session.add_all(accounts)
        session.flush()
        tokens = [ManagementToken.model_validate(r) for r in payload.get("management_tokens", [])]
        session.add_all(tokens)
        for row in payload.get("keys", []):
            fields = {k: v for k, v in row.items() if k != "secret"}
            key = ProviderKey.model_validate(
                {**fields, "master_key_id": "", "nonce": b"", "ciphertext": b""}
            )
            sealed = keyring.seal(str(row["secret"]).encode(), associated_data(key))
            key.master_key_id, key.nonce, key.ciphertext = (
                sealed.master_key_id,
                sealed.nonce,
                sealed.ciphertext,
            )
            session.add(key)
        session.flush()
        grants = [Grant.model_validate(row) for row in payload.get("grants", [])]
        session.add_all(grants)
        session.flush()
        session.add_all(SpendCounter.model_validate(r) for r in payload.get("spend_counters", []))
        if was_empty and accounts:
            owner = next((a for a in accounts if a.is_admin), accounts[0])
            close_setup(session, owner)
        summary = BackupSummary(
            len(accounts), len(payload.get("keys", [])), len(grants), len(tokens)
        )
        record_event(
            session,
            "vault_imported",
            accounts=summary.accounts,
            keys=summary.keys,
            grants=summary.grants,
            api_tokens=summary.api_tokens,
        )
        session.commit()
    except (KeyError, TypeError, ValueError):
        session.rollback()
        raise BackupError("the backup's contents are damaged; nothing was imported") from None
    except BaseException:
        session.rollback()
        raise
    return summary
