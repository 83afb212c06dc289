"""The key store: add, list, pick and decrypt provider keys. Plaintext never leaves it
except through ``reveal`` for the proxy's upstream call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from okap_server.clock import new_id
from okap_server.vault.crypto import KeyRing, Sealed, row_associated_data
from okap_server.vault.models import ProviderKey

MAX_KEY_LENGTH = 4096


class KeyStoreError(Exception):
    """A key operation was refused; the message is safe to show (it holds no secret)."""


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown of a key: never the key itself."""

    id: str
    account_id: str
    provider: str
    label: str
    hint: str
    is_default: bool
    created_at: datetime
    last_used_at: datetime | None


def key_hint(secret: str) -> str:
    """``sk-...x7fQ``: the first characters up to a dash, and the last four."""
    head = secret[:3] if len(secret) > 12 else ""
    if "-" in secret[:8]:
        head = secret[: secret.index("-", 0, 8) + 1]
    return f"{head}...{secret[-4:]}" if len(secret) > 8 else "..."


def associated_data(key: ProviderKey) -> bytes:
    return row_associated_data("provider_key", key.id, key.account_id, key.provider)


def info(key: ProviderKey) -> KeyInfo:
    return KeyInfo(
        id=key.id,
        account_id=key.account_id,
        provider=key.provider,
        label=key.label,
        hint=key.hint,
        is_default=key.is_default,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
    )


def validate_secret(secret: str) -> str:
    secret = secret.strip()
    if not secret:
        raise KeyStoreError("the key is empty")
    if len(secret) > MAX_KEY_LENGTH:
        raise KeyStoreError(f"the key is longer than {MAX_KEY_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in secret):
        raise KeyStoreError("the key contains whitespace or control characters")
    return secret


class KeyStore:
    """Provider keys of every account, encrypted under the vault's key ring."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def add(
        self,
        session: Session,
        *,
        account_id: str,
        provider: str,
        label: str,
        secret: str,
        make_default: bool = False,
    ) -> KeyInfo:
        """Encrypt and store a key. The caller commits. The first key of a provider is default."""
        secret = validate_secret(secret)
        label = label.strip()
        if not label or len(label) > 64:
            raise KeyStoreError("a label is 1 to 64 characters")
        existing = session.exec(
            select(ProviderKey).where(
                ProviderKey.account_id == account_id, ProviderKey.provider == provider
            )
        ).all()
        if any(k.label == label for k in existing):
            raise KeyStoreError(f"there is already a key labelled {label!r} for {provider}")
        key = ProviderKey(
            id=new_id("key_"),
            account_id=account_id,
            provider=provider,
            label=label,
            master_key_id="",
            nonce=b"",
            ciphertext=b"",
            hint=key_hint(secret),
            is_default=make_default or not existing,
        )
        sealed = self.keyring.seal(secret.encode(), associated_data(key))
        key.master_key_id, key.nonce, key.ciphertext = (
            sealed.master_key_id,
            sealed.nonce,
            sealed.ciphertext,
        )
        if key.is_default:
            for other in existing:
                other.is_default = False
                session.add(other)
        session.add(key)
        session.flush()
        return info(key)

    def reveal(self, key: ProviderKey) -> str:
        """The plaintext key, for the upstream call only. Raises DecryptionError."""
        sealed = Sealed(key.master_key_id, key.nonce, key.ciphertext)
        return self.keyring.open(sealed, associated_data(key)).decode()

    def reseal(self, key: ProviderKey) -> None:
        """Re-encrypt one row under the current master key (rotation)."""
        plaintext = self.reveal(key).encode()
        sealed = self.keyring.seal(plaintext, associated_data(key))
        key.master_key_id, key.nonce, key.ciphertext = (
            sealed.master_key_id,
            sealed.nonce,
            sealed.ciphertext,
        )

    @staticmethod
    def list(session: Session, account_id: str, provider: str | None = None) -> list[KeyInfo]:
        query = select(ProviderKey).where(ProviderKey.account_id == account_id)
        if provider is not None:
            query = query.where(ProviderKey.provider == provider)
        rows = session.exec(query.order_by(col(ProviderKey.provider), col(ProviderKey.label)))
        return [info(k) for k in rows]

    @staticmethod
    def get(session: Session, account_id: str, key_id: str) -> ProviderKey | None:
        """A key owned by this account, or None (another account's key is never found)."""
        key = session.get(ProviderKey, key_id)
        return key if key is not None and key.account_id == account_id else None

    @staticmethod
    def default_for(session: Session, account_id: str, provider: str) -> ProviderKey | None:
        rows = session.exec(
            select(ProviderKey)
            .where(ProviderKey.account_id == account_id, ProviderKey.provider == provider)
            .order_by(col(ProviderKey.is_default).desc(), col(ProviderKey.created_at))
        ).first()
        return rows

    @staticmethod
    def set_default(session: Session, account_id: str, key_id: str) -> None:
        key = KeyStore.get(session, account_id, key_id)
        if key is None:
            raise KeyStoreError("no such key")
        session.exec(
            update(ProviderKey)
            .where(
                col(ProviderKey.account_id) == account_id,
                col(ProviderKey.provider) == key.provider,
            )
            .values(is_default=False)
        )
        key.is_default = True
        session.add(key)

    @staticmethod
    def remove(session: Session, account_id: str, key_id: str) -> KeyInfo:
        key = KeyStore.get(session, account_id, key_id)
        if key is None:
            raise KeyStoreError("no such key")
        shown = info(key)
        session.delete(key)
        session.flush()
        if shown.is_default:
            successor = KeyStore.default_for(session, account_id, shown.provider)
            if successor is not None:
                successor.is_default = True
                session.add(successor)
        return shown
