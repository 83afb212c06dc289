"""An endpoint's signing secret (``whsec_`` + base64 of 24 random bytes, as Standard
Webhooks writes them), sealed with the master key and bound to its endpoint's row."""

from __future__ import annotations

import base64
import os
from typing import Protocol

from sqlmodel import Session, col, select

from okap_server.vault.crypto import KeyRing, Sealed, row_associated_data
from okap_server.webhooks.models import WebhookEndpoint

PREFIX = "whsec_"


class SealedRow(Protocol):
    @property
    def endpoint_id(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def master_key_id(self) -> str: ...
    @property
    def nonce(self) -> bytes: ...
    @property
    def ciphertext(self) -> bytes: ...


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(24)).decode()


def _associated(endpoint_id: str, account_id: str) -> bytes:
    return row_associated_data("webhook_endpoint", endpoint_id, account_id)


def seal_secret(keyring: KeyRing, endpoint_id: str, account_id: str, secret: str) -> Sealed:
    return keyring.seal(secret.encode(), _associated(endpoint_id, account_id))


def open_secret(keyring: KeyRing, row: SealedRow) -> str:
    sealed = Sealed(row.master_key_id, row.nonce, row.ciphertext)
    return keyring.open(sealed, _associated(row.endpoint_id, row.account_id)).decode()


def reseal_endpoints(session: Session, ring: KeyRing) -> int:
    """Re-encrypt every endpoint's secret under ``ring``'s current key (master key
    rotation, in its transaction); how many."""
    rows = session.exec(
        select(WebhookEndpoint).order_by(col(WebhookEndpoint.id)).with_for_update()
    ).all()
    for row in rows:
        plain = ring.open(
            Sealed(row.master_key_id, row.nonce, row.ciphertext),
            _associated(row.id, row.account_id),
        )
        sealed = ring.seal(plain, _associated(row.id, row.account_id))
        row.master_key_id, row.nonce, row.ciphertext = (
            sealed.master_key_id,
            sealed.nonce,
            sealed.ciphertext,
        )
        session.add(row)
    return len(rows)
