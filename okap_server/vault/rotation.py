"""Master key rotation: every secret re-encrypted under a new key in one transaction.

Crash safety with a key file: the new key is written to ``master.key.new`` (fsynced) before
the transaction commits, and becomes ``master.key`` after it. A crash between the two leaves
a database sealed under the pending key; the next start notices that the pending key opens
the check value and finishes the rename (``masterkey.finish_interrupted_rotation``). A crash
before the commit leaves the old key valid and the pending key unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import update
from sqlmodel import Session, col, select

from okap_server.audit.events import record_event
from okap_server.settings import Settings
from okap_server.vault.crypto import DecryptionError, KeyRing, generate_master_key
from okap_server.vault.keys import KeyStore
from okap_server.vault.masterkey import (
    CHECK_META_KEY,
    check_value,
    pending_key_file,
    write_key_file,
)
from okap_server.vault.models import ProviderKey, VaultMeta
from okap_server.webhooks.secrets import reseal_endpoints


class RotationError(Exception):
    """Rotation was refused or failed; nothing was changed. The message holds no secret."""


@dataclass(frozen=True)
class RotationResult:
    new_key: bytes
    old_key_id: str
    new_key_id: str
    resealed: int


def reseal_all(session: Session, ring: KeyRing) -> int:
    """Re-encrypt every provider key under ``ring``'s current key; the caller commits."""
    store = KeyStore(ring)
    rows = session.exec(select(ProviderKey).order_by(col(ProviderKey.id)).with_for_update()).all()
    for key in rows:
        try:
            store.reseal(key)
        except (DecryptionError, UnicodeDecodeError):
            raise RotationError(
                f"key {key.id} ({key.provider}, {key.label!r}) does not decrypt with the "
                "current master key; rotation aborted and nothing was changed. "
                "Run `okap-server doctor`"
            ) from None
        session.add(key)
    reseal_endpoints(session, ring)  # webhook signing secrets, sealed the same way
    return len(rows)


def rotate(
    session: Session,
    keyring: KeyRing,
    new_key: bytes,
) -> RotationResult:
    """Reseal every secret and the check value under ``new_key`` in ``session``'s transaction
    and commit. On any failure the transaction is rolled back."""
    ring = keyring.rotated_to(new_key)
    try:
        # Write first, so SQLite takes its write lock before reading and PostgreSQL locks
        # the check row: a second rotation waits instead of interleaving.
        result = session.exec(
            update(VaultMeta)
            .where(col(VaultMeta.key) == CHECK_META_KEY)
            .values(value=check_value(ring))
        )
        if getattr(result, "rowcount", 1) != 1:
            raise RotationError("this vault has no master key check value; start it once first")
        count = reseal_all(session, ring)
        record_event(
            session,
            "master_key_rotated",
            old_key_id=keyring.current_id,
            new_key_id=ring.current_id,
            resealed=count,
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return RotationResult(new_key, keyring.current_id, ring.current_id, count)


def rotate_with_key_file(settings: Settings, session: Session, keyring: KeyRing) -> RotationResult:
    """Rotation for a vault whose key lives in OKAP_HOME: pending file, commit, then swap."""
    pending = pending_key_file(settings)
    new_key = generate_master_key()
    write_key_file(pending, new_key)
    try:
        result = rotate(session, keyring, new_key)
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    # Written from memory (not renamed), so a pending file removed meanwhile loses nothing.
    write_key_file(settings.master_key_file, new_key)
    pending.unlink(missing_ok=True)
    return result


def rotate_with_env_key(
    session: Session, keyring: KeyRing, new_key_file: Path | None
) -> RotationResult:
    """Rotation for a vault keyed by OKAP_MASTER_KEY: the caller hands the new key on.

    With ``new_key_file`` the key is written there (mode 0600, refusing to overwrite) before
    the commit, so it cannot be lost; otherwise the caller prints it after the commit."""
    new_key = generate_master_key()
    if new_key_file is not None:
        if new_key_file.exists():
            raise RotationError(f"{new_key_file} already exists; nothing was changed")
        write_key_file(new_key_file, new_key)
    try:
        return rotate(session, keyring, new_key)
    except BaseException:
        if new_key_file is not None:
            new_key_file.unlink(missing_ok=True)
        raise
