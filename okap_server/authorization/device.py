"""The device authorization grant (RFC 8628).

User codes are 8 letters from ``BCDFGHJKLMNPQRSTVWXZ`` (no vowels, no look-alikes; 20**8 ≈
2.6e10, RFC 8628 §6.1), shown as ``WDJB-MJHT`` and typed case-insensitively, with or without
the dash. The device code is 256 bits and only its hash is stored. Polling faster than the
interval answers ``slow_down`` and adds 5 s to the interval (§3.5); the check is one
conditional UPDATE, so it also holds across replicas.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from okap_server.authorization.authorize import client_from
from okap_server.authorization.capacity import Caller
from okap_server.authorization.clients import check_client_id
from okap_server.authorization.delegation import delegation_asked
from okap_server.authorization.details import parse_details_json
from okap_server.authorization.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidAuthorizationDetails,
    InvalidGrant,
    SlowDown,
)
from okap_server.authorization.grants import deliver
from okap_server.authorization.models import AuthorizationRequest, Grant
from okap_server.authorization.requests import create_request, status_of
from okap_server.authorization.tokens import new_secret, token_hash
from okap_server.clock import utcnow
from okap_server.proxy.providers.catalog import ProviderCatalog
from okap_server.settings import Settings

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
SLOW_DOWN_STEP = 5
POLL_TOLERANCE = timedelta(milliseconds=200)


def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def format_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize_user_code(text: str) -> str | None:
    """``wdjb mjht``, ``WDJB-MJHT`` → ``WDJBMJHT``; None if it cannot be a user code."""
    code = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(code) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in code):
        return None
    return code


def start(
    session: Session,
    params: Mapping[str, str],
    catalog: ProviderCatalog,
    settings: Settings,
    *,
    caller: Caller,
) -> dict[str, Any]:
    """POST /oauth/device_authorization (RFC 8628 §3.1-3.2)."""
    client_id = check_client_id(params.get("client_id"))
    raw = params.get("authorization_details")
    if not raw:
        raise InvalidAuthorizationDetails("authorization_details: is required")
    details = parse_details_json(raw, catalog, settings)
    client = client_from(params, client_id)
    delegation = delegation_asked(params.get("delegation"))
    device_code = new_secret(32)
    user_code = new_user_code()
    while session.exec(
        select(AuthorizationRequest.id).where(AuthorizationRequest.user_code == user_code)
    ).first():
        user_code = new_user_code()
    create_request(
        session,
        settings,
        flow="device",
        client=client,
        details=details,
        caller=caller,
        device_code_hash=token_hash(device_code),
        user_code=user_code,
        poll_interval=settings.device_poll_interval_seconds,
        delegation_allowed=delegation,
    )
    session.commit()
    public = settings.effective_page_url  # a page: the person types the code there
    shown = format_user_code(user_code)
    return {
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": f"{public}/device",
        "verification_uri_complete": f"{public}/device?user_code={shown}",
        "expires_in": settings.pending_request_ttl_seconds,
        "interval": settings.device_poll_interval_seconds,
    }


def find_by_user_code(session: Session, text: str) -> AuthorizationRequest | None:
    code = normalize_user_code(text)
    if code is None:
        return None
    return session.exec(
        select(AuthorizationRequest).where(
            AuthorizationRequest.user_code == code, AuthorizationRequest.flow == "device"
        )
    ).first()


def poll(session: Session, device_code: str | None, client_id: str | None) -> tuple[Grant, str]:
    """The token endpoint's device_code grant (RFC 8628 §3.4-3.5)."""
    if not device_code:
        raise InvalidGrant("device_code is required")
    request = session.exec(
        select(AuthorizationRequest).where(
            AuthorizationRequest.device_code_hash == token_hash(device_code)
        )
    ).first()
    if request is None or request.client_id != client_id:
        raise InvalidGrant("unknown device_code for this client_id")
    now = utcnow()
    earliest = now - timedelta(seconds=request.poll_interval) + POLL_TOLERANCE
    on_time = session.execute(
        update(AuthorizationRequest)
        .where(
            col(AuthorizationRequest.id) == request.id,
            or_(
                col(AuthorizationRequest.last_polled_at).is_(None),
                col(AuthorizationRequest.last_polled_at) <= earliest,
            ),
        )
        .values(last_polled_at=now)
    )
    if getattr(on_time, "rowcount", 0) != 1:
        interval = request.poll_interval + SLOW_DOWN_STEP
        session.execute(
            update(AuthorizationRequest)
            .where(col(AuthorizationRequest.id) == request.id)
            .values(poll_interval=interval, last_polled_at=now)
        )
        session.commit()
        raise SlowDown(f"poll at most every {interval} seconds")
    session.commit()
    status = status_of(request, now)
    if status == "expired":
        raise ExpiredToken("the device code has expired; start again")
    if status == "denied":
        raise AccessDenied(request.deny_reason or "The person denied the request.")
    if status == "pending":
        raise AuthorizationPending("waiting for the person to approve")
    if request.token_delivered:
        raise InvalidGrant("the token for this device code was already issued")
    issued = deliver(session, request)
    if issued is None:
        raise InvalidGrant("the token for this device code was already issued")
    return issued
