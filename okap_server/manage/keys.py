"""Provider key changes every front door shares (dashboard, management API, CLI): rename,
replace the secret in place, and remove, moving the grants that depend on the key to
another key of the same provider first.

Replacing a secret keeps the key's id, so every grant pinned to it keeps working with no
new consent: the proxy reads the key row with the grant, and the caches holding those
grants are told after the commit (this process at once, other replicas through the notify
channel), so the upstream sees the new secret from the next call.

Add, list, make default and test are the dashboard's own functions, called by the API too.
The secret goes into the key store and never comes back: answers show the hint.
"""

from __future__ import annotations

from sqlmodel import Session, select

from okap_server.audit.events import record_event
from okap_server.context import Vault
from okap_server.dashboard.keys import dependents, refuse_misfiled
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
    label: str | None = None,
    make_default: bool = False,
    secret: str | None = None,
    ip: str | None,
    via: str = "api",
    misfiled_ok: bool = False,
) -> KeyInfo | None:
    """Rename, make default and/or replace the secret, in one audited transaction; None if
    the key is not this account's. Raises KeyStoreError (nothing changed), LooksMisfiled
    for a secret that looks like another provider's (unless ``misfiled_ok``)."""
    with vault.session() as session:
        key = vault.keys.get(session, account_id, key_id)
        if key is None:
            return None
        changed: list[str] = []
        if label is not None and label.strip() != key.label:
            _rename(session, key, label)
            changed.append("label")
        if secret is not None:
            if not misfiled_ok:
                refuse_misfiled(vault, key.provider, secret)
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
                via=via,
            )
        session.commit()
        affected = [g.id for g in dependents(session, account_id, key.id)]
        session.refresh(key)
        shown = info(key)
    if "secret" in changed or "default" in changed:
        for grant_id in affected:
            vault.grant_changed(grant_id)
    return shown


def same_provider_keys(vault: Vault, account_id: str, key_id: str) -> list[KeyInfo]:
    """The keys a key's grants could move to: the account's other keys of its provider."""
    with vault.session() as session:
        key = vault.keys.get(session, account_id, key_id)
        if key is None:
            return []
        return [k for k in vault.keys.list(session, account_id, key.provider) if k.id != key.id]


def remove_key(
    vault: Vault,
    account_id: str,
    key_id: str,
    *,
    move_to: str | None = None,
    break_grants: bool = False,
    ip: str | None,
    via: str,
) -> KeyInfo | None:
    """Remove one of this account's keys, in one transaction; None if it is not this
    account's.

    Active grants that depend on it (pinned to it, or using it as the default) are moved to
    ``move_to``, another key of the same provider, so they keep working with no new
    consent. Without ``move_to`` they are refused (KeyInUse) unless ``break_grants``: then
    their requests to this provider fail until the person revokes them or they ask again.
    Raises KeyStoreError for a ``move_to`` that is not another key of the same provider."""
    with vault.session() as session:
        key = vault.keys.get(session, account_id, key_id)
        if key is None:
            return None
        affected = dependents(session, account_id, key_id)
        target = None
        if move_to is not None:
            target = vault.keys.get(session, account_id, move_to)
            if target is None or target.id == key.id or target.provider != key.provider:
                raise KeyStoreError(f"move_to: not another {key.provider} key of this account")
        elif affected and not break_grants:
            raise KeyInUse([g.id for g in affected])
        for grant in affected if target is not None else ():
            grant.details = [
                {**e, "key_id": move_to} if e.get("provider") == key.provider else dict(e)
                for e in grant.details
            ]
            grant.version += 1
            session.add(grant)
        shown = vault.keys.remove(session, account_id, key_id)
        record_event(
            session,
            "key_removed",
            account_id=account_id,
            ip=ip,
            key_id=shown.id,
            provider=shown.provider,
            label=shown.label,
            hint=shown.hint,
            grants=[g.id for g in affected],
            moved_to=target.id if target is not None else None,
            via=via,
        )
        session.commit()
    for grant in affected:
        vault.grant_changed(grant.id)
    return shown
