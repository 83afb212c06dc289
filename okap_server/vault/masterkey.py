"""Loading the master key: from ``OKAP_MASTER_KEY`` or the key file in OKAP_HOME.

A vault that already holds secrets never gets a fresh key silently: a missing or wrong key
stops start-up, because a new key would orphan every stored secret. A check value sealed
under the master key (in ``vault_meta``) tells a wrong key from a right one before any
provider key is touched.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import time
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from okap_server.clock import utcnow
from okap_server.settings import Settings
from okap_server.vault.crypto import (
    MASTER_KEY_BYTES,
    DecryptionError,
    KeyRing,
    Sealed,
    generate_master_key,
    row_associated_data,
)
from okap_server.vault.models import VaultMeta

logger = logging.getLogger("okap.vault")

CHECK_META_KEY = "master_key_check"
STALE_PENDING_SECONDS = 3600
_CHECK_PLAINTEXT = b"okap master key check"
_CHECK_AAD = row_associated_data("vault_meta", CHECK_META_KEY)


class MasterKeyError(Exception):
    """The master key is missing, malformed or wrong; the message says what to do."""


def decode_master_key(text: str, source: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode() + b"==")
    except (binascii.Error, ValueError):
        raise MasterKeyError(
            f"{source}: not a valid master key (truncated or damaged?): expected "
            f"{MASTER_KEY_BYTES} bytes as base64url"
        ) from None
    if len(key) != MASTER_KEY_BYTES:
        raise MasterKeyError(
            f"{source}: not a valid master key (truncated or damaged?): a master key is "
            f"{MASTER_KEY_BYTES} bytes, this one has {len(key)}"
        )
    return key


def encode_master_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def write_key_file(path: Path, key: bytes) -> None:
    """Write a key file atomically with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (encode_master_key(key) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    sync_directory(path.parent)


def sync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: fsync the directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def pending_key_file(settings: Settings) -> Path:
    """Where a rotation writes the new key before committing (see ``vault.rotation``)."""
    return settings.master_key_file.with_name(settings.master_key_file.name + ".new")


def finish_interrupted_rotation(settings: Settings, check: Sealed | None) -> str | None:
    """Settle a rotation that stopped between its commit and its rename.

    If the pending key opens the vault's check value, the database was committed under it:
    it becomes the key file. Otherwise the rotation never committed and the pending key is
    left for ``drop_stale_pending_key`` once the key file proves right. Returns a note for the
    operator, or None.
    """
    pending = pending_key_file(settings)
    if settings.master_key is not None or not pending.exists():
        return None
    try:
        new_key = decode_master_key(pending.read_text(), f"pending key file {pending}")
    except (MasterKeyError, OSError):
        new_key = None
    if check is not None and new_key is not None and opens_check(KeyRing(new_key), check):
        os.replace(pending, settings.master_key_file)
        sync_directory(pending.parent)
        return f"finished an interrupted master key rotation: {settings.master_key_file} updated"
    return None


def drop_stale_pending_key(settings: Settings) -> None:
    """Once the key file is known to open the vault, an old pending key is from a rotation
    that never committed: nothing is sealed under it. A fresh one may belong to a rotation
    running right now, so it is left alone."""
    pending = pending_key_file(settings)
    if settings.master_key is not None or not pending.exists():
        return
    if time.time() - pending.stat().st_mtime > STALE_PENDING_SECONDS:
        pending.unlink()
        logger.warning("removed %s left by a master key rotation that did not complete", pending)


def read_check(engine: Engine) -> Sealed | None:
    with Session(engine) as session:
        row = session.get(VaultMeta, CHECK_META_KEY)
        if row is None:
            return None
        key_id, nonce, ciphertext = row.value.split(":")
        return Sealed(key_id, bytes.fromhex(nonce), bytes.fromhex(ciphertext))


def check_value(keyring: KeyRing) -> str:
    sealed = keyring.seal(_CHECK_PLAINTEXT, _CHECK_AAD)
    return f"{sealed.master_key_id}:{sealed.nonce.hex()}:{sealed.ciphertext.hex()}"


def store_check(session: Session, keyring: KeyRing) -> None:
    row = session.get(VaultMeta, CHECK_META_KEY) or VaultMeta(key=CHECK_META_KEY, value="")
    row.value = check_value(keyring)
    row.updated_at = utcnow()
    session.add(row)


def opens_check(keyring: KeyRing, sealed: Sealed) -> bool:
    try:
        return keyring.open(sealed, _CHECK_AAD) == _CHECK_PLAINTEXT
    except DecryptionError:
        return False


def load_keyring(settings: Settings, engine: Engine, *, create: bool = True) -> KeyRing:
    """The vault's key ring, creating a key file only for a vault that has none yet."""
    check = read_check(engine)
    note = finish_interrupted_rotation(settings, check)
    if note:
        logger.warning(note)
    key_file = settings.master_key_file
    if settings.master_key is not None:
        key = decode_master_key(settings.master_key.get_secret_value(), "OKAP_MASTER_KEY")
        source = "OKAP_MASTER_KEY"
    elif key_file.exists():
        try:
            text = key_file.read_text()
        except OSError as exc:
            raise MasterKeyError(
                f"cannot read master key file {key_file}: {exc.strerror}"
            ) from None
        key = decode_master_key(text, f"master key file {key_file}")
        source = f"master key file {key_file}"
    elif check is not None:
        raise MasterKeyError(
            f"this vault holds encrypted secrets but its master key is missing: set "
            f"OKAP_MASTER_KEY or restore {key_file}. No new key was made."
        )
    elif not create:
        raise MasterKeyError(f"no master key: set OKAP_MASTER_KEY or create {key_file}")
    else:
        key = generate_master_key()
        write_key_file(key_file, key)
        source = f"new master key file {key_file}"

    previous: list[bytes] = []
    if settings.master_key_previous is not None:
        previous.append(
            decode_master_key(
                settings.master_key_previous.get_secret_value(), "OKAP_MASTER_KEY_PREVIOUS"
            )
        )
    keyring = KeyRing(key, *previous)
    if check is None:
        with Session(engine) as session:
            store_check(session, keyring)
            session.commit()
    elif not opens_check(keyring, check):
        raise MasterKeyError(
            f"the master key from {source}"
            + (" (or OKAP_MASTER_KEY_PREVIOUS)" if previous else "")
            + " does not match this vault's secrets; "
            "nothing was changed. Use the key this vault was created with."
        )
    drop_stale_pending_key(settings)
    return keyring
