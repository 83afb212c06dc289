"""Typed errors of the okap SDK: one class per protocol error code.

Every error carries the server's ``error`` code and ``error_description`` (RFC 6749 §5.2),
so callers can branch on the class and still show the vault's own words. Error text never
contains a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class OkapError(Exception):
    """Base class: something the vault or the protocol refused."""

    default_error = "server_error"

    def __init__(self, description: str, *, error: str | None = None) -> None:
        self.error: str = error or self.default_error
        self.description: str = description
        super().__init__(f"{self.error}: {description}" if description else self.error)

    @property
    def code(self) -> str:
        """The error code under the reference SDK's attribute name."""
        return self.error


class AccessDenied(OkapError):
    """The person (or the vault's policy) said no."""

    default_error = "access_denied"


class AuthorizationExpired(OkapError):
    """The request, device code or authorization code expired before an answer came."""

    default_error = "expired_token"


class VaultUnreachable(OkapError):
    """The vault could not be reached or did not answer like an okap vault."""

    default_error = "vault_unreachable"


class InvalidRequest(OkapError):
    """The request was malformed or asked for something the vault cannot grant."""

    default_error = "invalid_request"


class TokenRevoked(OkapError):
    """The token is no longer active: revoked, expired or unknown."""

    default_error = "invalid_token"


ERROR_CLASSES: Mapping[str, type[OkapError]] = MappingProxyType(
    {
        "access_denied": AccessDenied,
        "expired_token": AuthorizationExpired,
        "invalid_grant": AuthorizationExpired,
        "invalid_request": InvalidRequest,
        "invalid_client": InvalidRequest,
        "invalid_scope": InvalidRequest,
        "invalid_authorization_details": InvalidRequest,
        "unsupported_grant_type": InvalidRequest,
        "unsupported_response_type": InvalidRequest,
        "unsupported_token_type": InvalidRequest,
        "invalid_request_uri": AuthorizationExpired,
        "invalid_token": TokenRevoked,
        "token_revoked": TokenRevoked,
    }
)


def error_from_body(status: int, body: Any) -> OkapError:
    """Build the typed error for an RFC 6749 §5.2 error body (or anything else)."""
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        code = str(body["error"])
        description = str(body.get("error_description") or body.get("reason") or "")
        return ERROR_CLASSES.get(code, OkapError)(description, error=code)
    if status == 401:
        return TokenRevoked("the vault does not accept this token")
    if status >= 500:
        return VaultUnreachable(f"the vault answered with HTTP {status}")
    return OkapError(f"the vault answered with HTTP {status}", error="server_error")
