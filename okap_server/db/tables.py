"""Every table, imported in one place so ``SQLModel.metadata`` and Alembic see them all."""

from sqlmodel import SQLModel

from okap_server.accounts.models import Account, ManagementToken, WebSession
from okap_server.audit.models import SecurityEvent
from okap_server.authorization.models import AuthorizationCode, AuthorizationRequest, Grant
from okap_server.proxy.models import (
    OwnedObject,
    RateCounter,
    RequestLog,
    Reservation,
    SpendCounter,
)
from okap_server.vault.models import ProviderKey, VaultMeta
from okap_server.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

metadata = SQLModel.metadata

__all__ = [
    "Account",
    "AuthorizationCode",
    "AuthorizationRequest",
    "Grant",
    "ManagementToken",
    "OwnedObject",
    "ProviderKey",
    "RateCounter",
    "RequestLog",
    "Reservation",
    "SecurityEvent",
    "SpendCounter",
    "VaultMeta",
    "WebSession",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "metadata",
]
