"""The OKAP v1.0 HTTP binding: ``POST /okap/authorize`` and its poll URL.

A person has to decide, so the route waits a bounded time (``Settings.okap_wait_seconds``,
shortened by ``Prefer: wait=N``, RFC 7240) and then answers ``pending`` with a poll URL.
This module is the framework-free core: parse the body, start the request, and say what
the answer is now (``answer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from okap_server.authorization.capacity import Caller
from okap_server.authorization.delegation import delegation_asked
from okap_server.authorization.details import loads_body, parse_requested
from okap_server.authorization.display_text import check_display_text, check_display_url
from okap_server.authorization.errors import (
    InvalidAuthorizationDetails,
    InvalidGrant,
    InvalidRequest,
)
from okap_server.authorization.grants import deliver, okap_grant_body
from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.requests import (
    MAX_CLIENT_NAME,
    ClientInfo,
    create_request,
    status_of,
)
from okap_server.catalog import ProviderCatalog
from okap_server.clock import isoformat_z, utcnow
from okap_server.grants.tokens import new_secret, token_hash
from okap_server.settings import Settings

OKAP_VERSION = "1.0"
BODY_FIELDS = frozenset({"okap", "authorization_details", "client", "delegation"})
CLIENT_FIELDS = frozenset({"name", "url", "callback"})
EXPIRED_REASON = "The request expired before anyone approved it."


@dataclass(frozen=True)
class Started:
    request: AuthorizationRequest
    poll_handle: str


def consent_url(settings: Settings, request_id: str) -> str:
    """The consent page is on the pages' host (``Settings.effective_page_url``)."""
    return f"{settings.effective_page_url}/consent/{request_id}"


def poll_url(settings: Settings, handle: str) -> str:
    return f"{settings.effective_public_url}/okap/authorize/{handle}"


def parse_client(raw: Any) -> ClientInfo:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidRequest("client: must be a JSON object")
    unknown = sorted(set(raw) - CLIENT_FIELDS)
    if unknown:
        raise InvalidRequest(f"client.{unknown[0][:40]}: unknown field")
    name = check_display_text("client.name", raw.get("name"), MAX_CLIENT_NAME)
    url = check_display_url("client.url", raw.get("url"))
    callback = check_display_text("client.callback", raw.get("callback"), 2048)
    return ClientInfo(
        client_id=url or name or "unnamed-app",
        name=name or url or "Unnamed app",
        url=url,
        redirect_uri=callback,
    )


def start(
    session: Session, body: bytes, catalog: ProviderCatalog, settings: Settings, *, caller: Caller
) -> Started:
    """Validate the body and store a pending request; nothing is stored on error."""
    data = loads_body(body)
    if not isinstance(data, dict):
        raise InvalidRequest("body: must be a JSON object")
    unknown = sorted(set(data) - BODY_FIELDS)
    if unknown:
        raise InvalidRequest(f"{unknown[0][:40]}: unknown field")
    if data.get("okap") != OKAP_VERSION:
        raise InvalidRequest(f"okap: this vault speaks OKAP {OKAP_VERSION}")
    client = parse_client(data.get("client"))
    if data.get("authorization_details") is None:  # as the form doors say (RFC 9396 §5)
        raise InvalidAuthorizationDetails("authorization_details: is required")
    details = parse_requested(data.get("authorization_details"), catalog, settings)
    delegation = delegation_asked(data.get("delegation"))
    handle = new_secret(32)
    request = create_request(
        session,
        settings,
        flow="okap",
        client=client,
        details=details,
        caller=caller,
        poll_handle_hash=token_hash(handle),
        delegation_allowed=delegation,
    )
    session.commit()
    return Started(request, handle)


def find_by_handle(session: Session, handle: str) -> AuthorizationRequest:
    request = session.exec(
        select(AuthorizationRequest).where(
            AuthorizationRequest.poll_handle_hash == token_hash(handle[:128])
        )
    ).first()
    if request is None:
        raise InvalidGrant("unknown poll URL")
    return request


def settled_among(session: Session, ids: list[str]) -> set[str]:
    """Which of these requests no longer wait for a person: decided, expired or gone.

    One query for any number of waiting polls (``web/long_poll.py``)."""
    still_pending = session.exec(
        select(AuthorizationRequest.id).where(
            col(AuthorizationRequest.id).in_(ids),
            AuthorizationRequest.status == "pending",
            col(AuthorizationRequest.expires_at) > utcnow(),
        )
    )
    return set(ids) - set(still_pending)


def answer(
    session: Session, request: AuthorizationRequest, handle: str, settings: Settings
) -> dict[str, Any] | None:
    """The final answer if there is one (granted/denied), else None (still pending)."""
    session.refresh(request)
    status = status_of(request)
    if status == "pending":
        return None
    if status == "denied":
        return {"okap": OKAP_VERSION, "status": "denied", "reason": request.deny_reason}
    if status == "expired":
        return {
            "okap": OKAP_VERSION,
            "status": "denied",
            "reason": EXPIRED_REASON,
            "error": "expired_token",
        }
    issued = deliver(session, request)
    if issued is None:
        raise InvalidGrant("the token for this request was already delivered")
    grant, token = issued
    return okap_grant_body(grant, token, settings.effective_public_url)


def pending_body(request: AuthorizationRequest, handle: str, settings: Settings) -> dict[str, Any]:
    return {
        "okap": OKAP_VERSION,
        "status": "pending",
        "poll_url": poll_url(settings, handle),
        "consent_url": consent_url(settings, request.id),
        "interval": settings.okap_poll_interval_seconds,
        "expires_at": isoformat_z(request.expires_at),
    }


def give_up(session: Session, request: AuthorizationRequest) -> bool:
    """Expire a still-pending request whose app stopped waiting (reference SDK timeout)."""
    result = session.execute(
        update(AuthorizationRequest)
        .where(
            col(AuthorizationRequest.id) == request.id,
            col(AuthorizationRequest.status) == "pending",
        )
        .values(status="expired")
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0))
