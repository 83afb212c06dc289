"""Provider key changes the dashboard's ``dashboard.keys`` does not do yet: rename, replace
the secret, and remove while moving the grants that depend on the key to another.

Add, list, make default, remove and test are the dashboard's own functions, called by the
API too. The secret goes into the key store and never comes back: answers show the hint.
"""

from __future__ import annotations

from sqlmodel import Session, select

from okap_server.audit.events import record_event
from okap_server.context import Vault
from okap_server.dashboard.keys import dependents, remove_key
from okap_server.grants import lifecycle
from okap_server.grants.details import stored
from okap_server.vault.keys import KeyInfo, KeyStoreError, info, key_hint, validate_secret
from okap_server.vault.keys import associated_data as key_associated_data
from okap_server.vault.models import ProviderKey


class KeyInUse(Exception):
    """Active grants depend on the key; ``grant_ids`` names them."""

    def __init__(self, grant_ids: list[str]) -> None:
        super().__init__(f"{len(grant_ids)} active grant(s) depend on this key")
        self.grant_ids = grant_ids


def _rename(session: Session, key: ProviderKey, label: str) -> None:
    label = label.strip()
    if not label or len(label) > 64:
        raise KeyStoreError("label: 1 to 64 characters")
    clash = session.exec(
        select(ProviderKey).where(
            ProviderKey.account_id == key.account_id,
            ProviderKey.provider == key.provider,
            ProviderKey.label == label,
            ProviderKey.id != key.id,
        )
    ).first()
    if clash is not None:
        raise KeyStoreError(f"label: there is already a {key.provider} key labelled {label!r}")
    key.label = label


def _reseal_with(vault: Vault, key: ProviderKey, secret: str) -> None:
    secret = validate_secret(secret)
    sealed = vault.keyring.seal(secret.encode(), key_associated_data(key))
    key.master_key_id, key.nonce, key.ciphertext = (
        sealed.master_key_id,
        sealed.nonce,
        sealed.ciphertext,
    )
    key.hint = key_hint(secret)


def update_key(
    vault: Vault,
    account_id: str,
    key_id: str,
    *,
    label: str | None,
    make_default: bool,
    secret: str | None,
    ip: str | None,
) -> KeyInfo | None:
    """Rename, make default and/or replace the secret, in one audited transaction; None if
    the key is not this account's. Raises KeyStoreError (nothing changed)."""
    with vault.session() as session:
        key = vault.keys.get(session, account_id, key_id)
        if key is None:
            return None
        changed: list[str] = []
        if label is not None and label.strip() != key.label:
            _rename(session, key, label)
            changed.append("label")
        if secret is not None:
            _reseal_with(vault, key, secret)
            changed.append("secret")
        session.add(key)
        if make_default and not key.is_default:
            session.flush()
            vault.keys.set_default(session, account_id, key.id)
            changed.append("default")
        if changed:
            record_event(
                session,
                "key_changed",
                account_id=account_id,
                ip=ip,
                key_id=key.id,
                provider=key.provider,
                label=key.label,
                hint=key.hint,
                changed=changed,
            )
        if "secret" in changed:  # cached views hold the old secret
            for grant in dependents(session, account_id, key.id):
                lifecycle.notify_after_commit(session, grant.id)
        session.commit()
        session.refresh(key)
        shown = info(key)
    return shown


def remove_key_safely(
    vault: Vault, account_id: str, key_id: str, move_to: str | None, ip: str | None
) -> KeyInfo | None:
    """Remove a key, refusing (KeyInUse) while active grants depend on it, unless
    ``move_to`` names another key of the same provider: those grants are moved there first.
    None if the key (or ``move_to``) is not this account's."""
    with vault.session() as session:
        key = vault.keys.get(session, account_id, key_id)
        if key is None:
            return None
        affected = dependents(session, account_id, key_id)
        if affected and move_to is None:
            raise KeyInUse([g.id for g in affected])
        if move_to is not None:
            target = vault.keys.get(session, account_id, move_to)
            if target is None or target.id == key.id:
                return None
            if target.provider != key.provider:
                raise KeyStoreError(f"move_to: not a {key.provider} key")
            for grant in affected:
                grant.details = stored(
                    {**e, "key_id": target.id} if e.get("provider") == key.provider else e
                    for e in grant.details
                )
                lifecycle.changed(session, grant)
            session.commit()
    return remove_key(vault, account_id, key_id, ip)
