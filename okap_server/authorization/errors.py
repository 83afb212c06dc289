"""One exception class per OAuth / RAR / OKAP error code, rendered in one place (``render``).

As in Authlib's ``rfc6749/errors.py``: the protocol core raises these; the web layer calls
``render`` to turn one into ``(status, body, headers)``. Descriptions never contain a secret.
"""

from __future__ import annotations

from typing import Any, ClassVar


class OAuthError(Exception):
    """RFC 6749 §5.2 error: ``{"error": code, "error_description": text}``."""

    error: ClassVar[str] = "server_error"
    # The class's usual status; one error code may answer another status where the RFCs
    # say so (``temporarily_unavailable`` is 503 for the whole vault, 429 for one caller).
    status_code: int = 400

    def __init__(
        self,
        description: str = "",
        *,
        headers: dict[str, str] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.headers = headers or {}
        if status_code is not None:
            self.status_code = status_code

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status_code = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidRequestUri(OAuthError):
    """RFC 9101 §7 / RFC 9126 §4: an unknown, used or expired ``request_uri``."""

    error = "invalid_request_uri"


class InvalidAuthorizationDetails(OAuthError):
    """RFC 9396 §5: the description names the field and the reason."""

    error = "invalid_authorization_details"


class AccessDenied(OAuthError):
    error = "access_denied"


class AuthorizationPending(OAuthError):
    """RFC 8628 §3.5."""

    error = "authorization_pending"


class SlowDown(OAuthError):
    """RFC 8628 §3.5: polling too fast. Also the front doors' answer (as a 429 with
    ``Retry-After``) to a caller that asks too often (SPEC.md "Floods")."""

    error = "slow_down"


class ExpiredToken(OAuthError):
    error = "expired_token"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the caller's own bearer token is missing, unknown, expired or revoked."""

    error = "invalid_token"
    status_code = 401

    def __init__(self, description: str = "") -> None:
        super().__init__(description, headers={"WWW-Authenticate": f'Bearer error="{self.error}"'})


class TooManyRequests(OAuthError):
    error = "too_many_requests"
    status_code = 429


class TemporarilyUnavailable(OAuthError):
    """RFC 6749 §4.1.2.1 ``temporarily_unavailable``: 503 while the vault is overloaded or its
    database is away; 429 (RFC 6585 §4, RFC 9126 §2.3) when one caller asked too often."""

    error = "temporarily_unavailable"
    status_code = 503


class ServerError(OAuthError):
    error = "server_error"
    status_code = 500


def render(exc: OAuthError, *, okap: bool = False) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The one place an error becomes a response. ``okap`` adds ``"okap": "1.0"``."""
    body = exc.body()
    if okap:
        body = {"okap": "1.0", "status": "error", **body}
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **exc.headers}
    return exc.status_code, body, headers
