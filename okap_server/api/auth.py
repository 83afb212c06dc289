"""Who an /api/v1 call acts as: a bearer ``okapm_`` token (RFC 6750 §2.1), its scope,
and a per-token rate limit (RFC 6585 §4).

Only the ``Authorization`` header is read. A token in the URL is refused (RFC 6750 §5.3:
URLs end up in logs and histories), and the access log redacts it (``proxy/redaction``).
An ``okap_`` proxy token is not a management token: 401, as any unknown token.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from okap_server.accounts.management_tokens import Principal, authenticate
from okap_server.api.problems import MissingScope, RateLimited, TokenInQuery, Unauthorized
from okap_server.proxy.redaction import CREDENTIAL_NAMES, query_params
from okap_server.web.rate_limit import RateLimiter
from okap_server.web.sessions import vault_of

SCOPE_EXTENSION = "x-okap-scope"
SCHEME_NAME = "okapm"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="okap-api"'}

bearer = HTTPBearer(
    scheme_name=SCHEME_NAME,
    description="An okapm_ management token (okap-server api-tokens create).",
    auto_error=False,
)


class ApiLimits:
    """Per-token buckets, built once per app (``app.state.api_limits``)."""

    def __init__(self, per_minute: int) -> None:
        self.per_token = RateLimiter(per_minute)


def _refuse_token_in_query(request: Request) -> None:
    for name, value in query_params(request.url.query):
        if name.strip().lower() in CREDENTIAL_NAMES or "okap" in value:
            raise TokenInQuery(
                f"query parameter {name[:40]!r}: send tokens in the Authorization header "
                "(RFC 6750 §2.1); this one should be revoked"
            )


def principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> Principal:
    """The calling token's principal; 401 for a missing, unknown or proxy token."""
    _refuse_token_in_query(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send Authorization: Bearer okapm_...", headers=CHALLENGE)
    vault = vault_of(request)
    with vault.session() as session:
        found = authenticate(session, credentials.credentials.strip())
    if found is None:
        raise Unauthorized(
            "the token is unknown, revoked or expired, or is not an okapm_ management token",
            headers=CHALLENGE,
        )
    limits: ApiLimits = request.app.state.api_limits
    wait = limits.per_token.take(found.token_id)
    if wait:
        raise RateLimited("slow down", headers={"Retry-After": str(max(1, int(wait + 0.999)))})
    return found


def check_scope(found: Principal, scope: str) -> Principal:
    """``found``, if its token carries ``scope`` (else 403 naming it)."""
    if scope not in found.scopes:
        raise MissingScope(f"this needs the {scope!r} scope", scope=scope)
    return found


def require(scope: str) -> Callable[..., Principal]:
    """A dependency: the principal, if its token carries ``scope`` (else 403 naming it)."""

    def check(found: Principal = Depends(principal)) -> Principal:
        return check_scope(found, scope)

    return check
