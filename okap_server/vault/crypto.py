"""AES-256-GCM encryption of stored secrets under a rotatable master key.

Each encryption uses a fresh 96-bit nonce (NIST SP 800-38D §8.2.2: random nonces are safe far
beyond any vault's number of writes). The associated data binds a ciphertext to its row, so
a ciphertext copied onto another row fails authentication instead of decrypting.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASTER_KEY_BYTES = 32
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext did not authenticate: wrong master key, wrong row, or tampering."""


@dataclass(frozen=True)
class Sealed:
    """One encrypted value and what is needed to open it again."""

    master_key_id: str
    nonce: bytes
    ciphertext: bytes


def master_key_id(key: bytes) -> str:
    """A public, stable name for a master key: a truncated SHA-256 of a derived value."""
    return hashlib.sha256(b"okap-master-key-id:" + key).hexdigest()[:16]


def generate_master_key() -> bytes:
    return os.urandom(MASTER_KEY_BYTES)


class KeyRing:
    """The current master key, plus older ones still accepted for decryption during rotation."""

    def __init__(self, current: bytes, *older: bytes) -> None:
        for key in (current, *older):
            if len(key) != MASTER_KEY_BYTES:
                raise ValueError("a master key is 32 bytes (AES-256)")
        self._current_id = master_key_id(current)
        self._keys = {master_key_id(k): AESGCM(k) for k in (*older, current)}
        self._mac_root = hmac.new(current, b"okap-mac-root-v1", "sha256").digest()

    @property
    def current_id(self) -> str:
        return self._current_id

    def rotated_to(self, new_key: bytes) -> KeyRing:
        """A ring sealing under ``new_key`` that still opens everything this one opens."""
        ring = KeyRing(new_key)
        ring._keys = {**self._keys, **ring._keys}
        return ring

    def mac_key(self, purpose: str) -> bytes:
        """A key for one purpose's HMACs (e.g. form tokens), derived from the current master
        key, so every replica agrees on it and none is stored. It changes with a rotation."""
        return hmac.new(self._mac_root, purpose.encode(), "sha256").digest()

    def knows(self, key_id: str) -> bool:
        return key_id in self._keys

    def seal(self, plaintext: bytes, associated_data: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._keys[self._current_id].encrypt(nonce, plaintext, associated_data)
        return Sealed(self._current_id, nonce, ciphertext)

    def open(self, sealed: Sealed, associated_data: bytes) -> bytes:
        aead = self._keys.get(sealed.master_key_id)
        if aead is None:
            raise DecryptionError(f"no master key with id {sealed.master_key_id} is loaded")
        try:
            return aead.decrypt(sealed.nonce, sealed.ciphertext, associated_data)
        except InvalidTag:
            raise DecryptionError("ciphertext does not authenticate") from None


def row_associated_data(*parts: str) -> bytes:
    """Associated data for a row: its identifying fields, unambiguously joined."""
    return b"\x1f".join(p.encode() for p in ("okap-v1", *parts))
