"""``POST /okap/request``: the reference Python SDK's flat body (``okap`` 0.1.x on PyPI).

The SDK sends one ``ai_model_access`` entry flattened (provider, models, capabilities,
limits, expires, reason, app_name, app_url, redirect_uri) and expects one synchronous
answer ``{"okap", "approved", "token", "error", "error_code"}`` within its 30 s timeout.
The answer names capabilities in the SDK's own vocabulary (``vision`` and ``code`` as the
endpoints they mean), since its models refuse any other word.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from okap_server.authorization.capacity import Caller
from okap_server.authorization.details import loads_body, parse_requested
from okap_server.authorization.errors import InvalidRequest
from okap_server.authorization.grants import deliver, public_details
from okap_server.authorization.models import AuthorizationRequest
from okap_server.authorization.okap_binding import EXPIRED_REASON, OKAP_VERSION, parse_client
from okap_server.authorization.requests import create_request, status_of
from okap_server.catalog import ProviderCatalog
from okap_server.clock import isoformat_z
from okap_server.grants.capabilities import in_reference_words
from okap_server.settings import Settings

FLAT_FIELDS = frozenset(
    {
        "okap",
        "provider",
        "models",
        "capabilities",
        "limits",
        "expires",
        "reason",
        "app_name",
        "app_url",
        "redirect_uri",
    }
)
ENTRY_FIELDS = ("provider", "models", "capabilities", "limits", "expires", "reason")


def start(
    session: Session, body: bytes, catalog: ProviderCatalog, settings: Settings, *, caller: Caller
) -> AuthorizationRequest:
    data = loads_body(body)
    if not isinstance(data, dict):
        raise InvalidRequest("body: must be a JSON object")
    unknown = sorted(set(data) - FLAT_FIELDS)
    if unknown:
        raise InvalidRequest(f"{unknown[0][:40]}: unknown field")
    if data.get("okap", OKAP_VERSION) != OKAP_VERSION:
        raise InvalidRequest(f"okap: this vault speaks OKAP {OKAP_VERSION}")
    entry = {"type": "ai_model_access"} | {k: data[k] for k in ENTRY_FIELDS if k in data}
    details = parse_requested([entry], catalog, settings)
    client = parse_client(
        {
            "name": data.get("app_name"),
            "url": data.get("app_url"),
            "callback": data.get("redirect_uri"),
        }
    )
    request = create_request(
        session, settings, flow="reference", client=client, details=details, caller=caller
    )
    session.commit()
    return request


def denied(message: str, code: str) -> dict[str, Any]:
    return {
        "okap": OKAP_VERSION,
        "approved": False,
        "token": None,
        "error": message,
        "error_code": code,
    }


def answer(
    session: Session, request: AuthorizationRequest, settings: Settings
) -> dict[str, Any] | None:
    """The SDK's answer once decided; None while pending."""
    session.refresh(request)
    status = status_of(request)
    if status == "pending":
        return None
    if status == "denied":
        return denied(request.deny_reason or "The person denied the request.", "access_denied")
    if status == "expired":
        return denied(EXPIRED_REASON, "expired")
    issued = deliver(session, request)
    if issued is None:
        return denied("The token for this request was already delivered.", "invalid_grant")
    grant, token = issued
    entry = public_details(grant.details, settings.effective_public_url)[0]
    return {
        "okap": OKAP_VERSION,
        "approved": True,
        "token": {
            "token": token,
            "base_url": entry["base_url"],
            "provider": entry["provider"],
            "models": entry["models"],
            "capabilities": in_reference_words(entry["capabilities"]),
            "limits": entry["limits"],
            "expires_at": entry["expires"],
            "created_at": isoformat_z(grant.created_at),
        },
        "error": None,
        "error_code": None,
    }
