"""Webhook endpoints, for the API and the dashboard alike: register (the URL checked by
the SSRF guard, the secret shown once), list, remove, re-enable, send a test event, and
read an endpoint's delivery log. Framework-free; callers render the errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from okap_server.clock import isoformat_z, new_id
from okap_server.context import Vault
from okap_server.webhooks.events import SUBSCRIBABLE, emit
from okap_server.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from okap_server.webhooks.secrets import new_secret, seal_secret
from okap_server.webhooks.url_guard import UnsafeUrl, UrlPolicy, check_url

MAX_ENDPOINTS = 20
MAX_DESCRIPTION = 200


class WebhookError(ValueError):
    """A registration refused; the message names why and is safe to show."""


def policy_of(vault: Vault) -> UrlPolicy:
    settings = vault.settings
    return UrlPolicy(settings.webhook_allow_loopback, settings.webhook_allow_private)


def _events(events: list[str] | None) -> list[str]:
    if not events:
        return list(SUBSCRIBABLE)
    unknown = sorted({e for e in events if e not in SUBSCRIBABLE})
    if unknown:
        raise WebhookError(
            f"unknown event {unknown[0][:60]!r}; known events: {', '.join(SUBSCRIBABLE)}"
        )
    return [e for e in SUBSCRIBABLE if e in events]


def create_endpoint(
    vault: Vault,
    account_id: str,
    url: str,
    events: list[str] | None,
    description: str = "",
) -> tuple[WebhookEndpoint, str]:
    """Store an endpoint; returns it and its signing secret (the only time it is shown)."""
    url = url.strip()
    try:
        check_url(url, policy_of(vault))
    except UnsafeUrl as exc:
        raise WebhookError(f"url: {exc}") from None
    if len(description) > MAX_DESCRIPTION:
        raise WebhookError(f"description: at most {MAX_DESCRIPTION} characters")
    wanted = _events(events)
    secret = new_secret()
    with vault.session() as session:
        count = len(
            session.exec(
                select(WebhookEndpoint.id).where(WebhookEndpoint.account_id == account_id)
            ).all()
        )
        if count >= MAX_ENDPOINTS:
            raise WebhookError(f"at most {MAX_ENDPOINTS} endpoints per account")
        endpoint_id = new_id("wh_")
        sealed = seal_secret(vault.keyring, endpoint_id, account_id, secret)
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            account_id=account_id,
            url=url,
            description=description.strip(),
            events=wanted,
            master_key_id=sealed.master_key_id,
            nonce=sealed.nonce,
            ciphertext=sealed.ciphertext,
        )
        session.add(endpoint)
        session.commit()
    return endpoint, secret


def list_endpoints(session: Session, account_id: str) -> list[WebhookEndpoint]:
    return list(
        session.exec(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.account_id == account_id)
            .order_by(col(WebhookEndpoint.created_at))
        )
    )


def own_endpoint(session: Session, account_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    found = session.get(WebhookEndpoint, endpoint_id[:40])
    return found if found is not None and found.account_id == account_id else None


def remove_endpoint(vault: Vault, account_id: str, endpoint_id: str) -> bool:
    with vault.session() as session:
        endpoint = own_endpoint(session, account_id, endpoint_id)
        if endpoint is None:
            return False
        session.execute(
            delete(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id)
        )
        session.delete(endpoint)
        session.commit()
    return True


def enable_endpoint(vault: Vault, account_id: str, endpoint_id: str) -> bool:
    """Send to a disabled endpoint again (new events from now on)."""
    with vault.session() as session:
        endpoint = own_endpoint(session, account_id, endpoint_id)
        if endpoint is None:
            return False
        endpoint.disabled_at, endpoint.disabled_reason = None, None
        session.add(endpoint)
        session.commit()
    return True


def send_test(vault: Vault, account_id: str, endpoint_id: str) -> str | None:
    """Queue a ``webhook.test`` event to this endpoint; its id, or None if not found."""
    with vault.session() as session:
        endpoint = own_endpoint(session, account_id, endpoint_id)
        if endpoint is None:
            return None
        if endpoint.disabled_at is not None:
            raise WebhookError("this endpoint is disabled; enable it first")
        data = {"endpoint_id": endpoint.id, "message": "A test event from your okap vault."}
        event_id = emit(session, "webhook.test", account_id, data, endpoint_id=endpoint.id)
        session.commit()
    return event_id


@dataclass(frozen=True)
class DeliveryView:
    event_id: str
    kind: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None


def deliveries(session: Session, endpoint_id: str, limit: int = 50) -> list[DeliveryView]:
    """The endpoint's delivery log, newest first."""
    rows = session.exec(
        select(WebhookDelivery, WebhookEvent.kind)
        .join(WebhookEvent, col(WebhookEvent.id) == col(WebhookDelivery.event_id))
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(col(WebhookDelivery.seq).desc())
        .limit(limit)
    ).all()
    return [
        DeliveryView(
            d.event_id,
            kind,
            d.status,
            d.attempts,
            d.last_status,
            d.last_error,
            d.created_at,
            d.next_attempt_at if d.status == "pending" else None,
            d.delivered_at,
        )
        for d, kind in rows
    ]


def endpoint_summary(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the API shows of an endpoint: never its secret."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "created_at": isoformat_z(endpoint.created_at),
        "disabled": endpoint.disabled_at is not None,
        "disabled_at": isoformat_z(endpoint.disabled_at) if endpoint.disabled_at else None,
        "disabled_reason": endpoint.disabled_reason,
    }


def delivery_summary(view: DeliveryView) -> dict[str, Any]:
    return {
        "event_id": view.event_id,
        "type": view.kind,
        "status": view.status,
        "attempts": view.attempts,
        "last_status": view.last_status,
        "last_error": view.last_error,
        "created_at": isoformat_z(view.created_at),
        "next_attempt_at": isoformat_z(view.next_attempt_at) if view.next_attempt_at else None,
        "delivered_at": isoformat_z(view.delivered_at) if view.delivered_at else None,
    }
