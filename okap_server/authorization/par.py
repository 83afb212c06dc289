"""Pushed authorization requests (RFC 9126): push once, use the request_uri once, soon.

Authlib has no PAR endpoint. The pushed request is validated exactly like a plain
/authorize request and stored as a pending AuthorizationRequest holding the hash of the
request_uri's random part; /authorize consumes it with one conditional UPDATE.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from okap_server.authorization.authorize import RedirectableError, check_authorize
from okap_server.authorization.capacity import Caller
from okap_server.authorization.errors import InvalidRequest, InvalidRequestUri
from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.requests import create_request
from okap_server.authorization.tokens import new_secret, token_hash
from okap_server.clock import utcnow
from okap_server.proxy.providers.catalog import ProviderCatalog
from okap_server.settings import Settings

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


def push(
    session: Session,
    params: Mapping[str, str],
    catalog: ProviderCatalog,
    settings: Settings,
    *,
    caller: Caller,
) -> tuple[int, dict[str, Any]]:
    """POST /oauth/par → 201 ``{"request_uri", "expires_in"}``; errors are JSON (§2.3)."""
    if "request_uri" in params:
        raise InvalidRequest("request_uri must not be pushed")  # RFC 9126 §2.1
    try:
        checked = check_authorize(params, catalog, settings)
    except RedirectableError as exc:
        raise exc.error from None
    secret = new_secret(32)
    create_request(
        session,
        settings,
        flow="code",
        client=checked.client,
        details=checked.details,
        state=checked.state,
        code_challenge=checked.code_challenge,
        code_challenge_method="S256",
        delegation_allowed=checked.delegation_allowed,
        caller=caller,
        request_uri_hash=token_hash(secret),
    )
    session.commit()
    return 201, {"request_uri": REQUEST_URI_PREFIX + secret, "expires_in": settings.par_ttl_seconds}


def consume(
    session: Session, client_id: str | None, request_uri: str, settings: Settings
) -> AuthorizationRequest:
    """The pushed request behind ``request_uri``, marked used; single use, short-lived."""
    if not request_uri.startswith(REQUEST_URI_PREFIX):
        raise InvalidRequestUri("request_uri was not issued by this vault")
    digest = token_hash(request_uri[len(REQUEST_URI_PREFIX) :])
    request = session.exec(
        select(AuthorizationRequest).where(AuthorizationRequest.request_uri_hash == digest)
    ).first()
    if request is None:
        raise InvalidRequestUri("unknown request_uri")
    if client_id != request.client_id:
        raise InvalidRequestUri("request_uri was pushed by another client_id")
    oldest = utcnow() - timedelta(seconds=settings.par_ttl_seconds)
    won = session.execute(
        update(AuthorizationRequest)
        .where(
            col(AuthorizationRequest.id) == request.id,
            col(AuthorizationRequest.request_uri_used).is_(False),
            col(AuthorizationRequest.created_at) > oldest,
        )
        .values(request_uri_used=True)
    )
    if getattr(won, "rowcount", 0) != 1:
        session.rollback()
        raise InvalidRequestUri("request_uri was already used or has expired")
    session.commit()
    session.refresh(request)
    return request
