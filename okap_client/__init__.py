"""okap client SDK: ask an okap vault for scoped access to AI providers.

from okap_client import OkapClient
with OkapClient("http://127.0.0.1:8400", app_name="My app") as okap:
    token = okap.get_access(provider="openai", models=["gpt-4o-mini"], monthly_limit=5)
"""

from okap_client.async_client import AsyncOkapClient
from okap_client.cache import TokenCache
from okap_client.client import OkapClient
from okap_client.delegation import DelegationRefused
from okap_client.errors import (
    AccessDenied,
    AuthorizationExpired,
    InvalidRequest,
    OkapError,
    TokenRevoked,
    VaultUnreachable,
)
from okap_client.flows import DeviceCode
from okap_client.loopback import LoopbackListener
from okap_client.token import OkapToken, TokenNotBound
from okap_client.usage import Usage

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AsyncOkapClient",
    "AuthorizationExpired",
    "DelegationRefused",
    "DeviceCode",
    "InvalidRequest",
    "LoopbackListener",
    "OkapClient",
    "OkapError",
    "OkapToken",
    "TokenCache",
    "TokenNotBound",
    "TokenRevoked",
    "Usage",
    "VaultUnreachable",
]
