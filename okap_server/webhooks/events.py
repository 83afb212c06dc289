"""The events a vault sends, and :func:`emit`, which writes one to the outbox.

``emit`` adds rows to the caller's transaction (a ``Session`` or a ``Connection``): the
event commits with the change that caused it, or not at all, and nothing is sent before
that commit. Delivery is the worker's job (``worker.py``), so no caller ever waits on a
receiver. Payloads name the account, the app, the grant, the provider and the amounts;
they never carry a token, a key, a secret or a prompt (``safe_payload`` refuses such
fields, so a mistake fails in tests, not in someone's receiver).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from okap_server.clock import isoformat_z, new_id, utcnow
from okap_server.db.dialect import insert_for
from okap_server.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

EVENT_KINDS: tuple[str, ...] = (
    "access.requested",
    "access.approved",
    "grant.approved",
    "grant.denied",
    "grant.revoked",
    "grant.expiring",
    "budget.threshold",
    "key.failing",
    "token.delegated",
    "webhook.test",
)
# What a person may subscribe to (the test event is sent on request only).
SUBSCRIBABLE: tuple[str, ...] = EVENT_KINDS[:-1]

_ENDPOINT: Any = WebhookEndpoint.__table__  # type: ignore[attr-defined]
_EVENT: Any = WebhookEvent.__table__  # type: ignore[attr-defined]
_DELIVERY: Any = WebhookDelivery.__table__  # type: ignore[attr-defined]

# Field names that must never be in a payload, at any depth.
_FORBIDDEN = frozenset(
    {"token", "access_token", "secret", "key", "api_key", "prompt", "messages", "password"}
)


class UnsafePayload(ValueError):
    """A payload named a field that could carry a secret or a prompt."""


def safe_payload(data: Any, path: str = "data") -> None:
    if isinstance(data, dict):
        for name, value in data.items():
            if str(name).lower() in _FORBIDDEN:
                raise UnsafePayload(f"{path}.{name} may carry a secret; webhooks never send one")
            safe_payload(value, f"{path}.{name}")
    elif isinstance(data, list):
        for item in data:
            safe_payload(item, path)


def emit(
    db: Session | Connection,
    kind: str,
    account_id: str,
    data: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    now: datetime | None = None,
    endpoint_id: str | None = None,
) -> str | None:
    """Write one event, and a delivery for each of the account's enabled endpoints that
    subscribed to ``kind``, in the caller's transaction. Returns the event id (the
    ``webhook-id`` header), or None when ``dedupe_key`` was written before (a crossing or
    a notice already sent). ``endpoint_id``: to that endpoint only (a test event)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown webhook event {kind!r}")
    safe_payload(data)
    conn = db.connection() if isinstance(db, Session) else db
    when = now or utcnow()
    event_id = new_id("msg_")
    body = {"type": kind, "timestamp": isoformat_z(when), "data": data}
    row = {
        "id": event_id,
        "account_id": account_id,
        "kind": kind,
        "payload": body,
        "dedupe_key": dedupe_key,
        "created_at": when,
    }
    if dedupe_key is None:
        conn.execute(_EVENT.insert(), row)
    else:
        written = conn.execute(
            insert_for(conn, _EVENT).values(row).on_conflict_do_nothing().returning(_EVENT.c.id)
        ).first()
        if written is None:
            return None
    query = select(_ENDPOINT.c.id, _ENDPOINT.c.events).where(
        _ENDPOINT.c.account_id == account_id, _ENDPOINT.c.disabled_at.is_(None)
    )
    if endpoint_id is not None:
        query = query.where(_ENDPOINT.c.id == endpoint_id)
    targets = [
        found for found, events in conn.execute(query) if endpoint_id or kind in (events or ())
    ]
    if targets:
        conn.execute(
            _DELIVERY.insert(),
            [
                {
                    "event_id": event_id,
                    "endpoint_id": target,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": when,
                    "created_at": when,
                }
                for target in sorted(targets)
            ],
        )
    return event_id


def grant_data(
    grant_id: str | None,
    client_id: str,
    client_name: str | None,
    providers: list[str],
    **extra: Any,
) -> dict[str, Any]:
    """The part every grant event shares: which app, which grant, which providers."""
    return {
        "grant_id": grant_id,
        "app": {"client_id": client_id, "name": client_name or ""},
        "providers": providers,
        **extra,
    }


def limits_of(details: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Each provider's limits as granted (USD amounts and counts; no key id)."""
    return {
        str(entry.get("provider")): {
            "models": list(entry.get("models") or []),
            "limits": dict(entry.get("limits") or {}),
            "expires": entry.get("expires"),
        }
        for entry in details
    }


def emit_token_delegated(
    db: Session | Connection,
    account_id: str,
    *,
    parent_grant_id: str,
    grant_id: str,
    client_id: str,
    client_name: str | None,
    details: list[dict[str, Any]],
) -> str | None:
    """``token.delegated``: an app passed a narrower token of its grant to another (the
    delegation feature calls this in the transaction that mints the child grant)."""
    return emit(
        db,
        "token.delegated",
        account_id,
        grant_data(
            grant_id,
            client_id,
            client_name,
            [str(e.get("provider")) for e in details],
            parent_grant_id=parent_grant_id,
            access=limits_of(details),
        ),
    )
