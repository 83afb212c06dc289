"""The authorization endpoint's protocol core (RFC 6749 §4.1.1, RFC 9396 §3, RFC 9126).

``check_authorize`` validates an authorization request, shared by ``/oauth/authorize``
(plain parameters) and ``/oauth/par`` (pushed). ``finish_url`` builds the redirect back to
the app with ``code``/``error``, ``state`` and ``iss`` (RFC 9207).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from okap_server.authorization import pkce
from okap_server.authorization.clients import (
    check_client_id,
    check_redirect_uri,
    may_receive_errors,
)
from okap_server.authorization.delegation import delegation_asked
from okap_server.authorization.details import RequestedDetails, parse_details_json
from okap_server.authorization.display_text import check_display_text, check_display_url
from okap_server.authorization.errors import (
    InvalidAuthorizationDetails,
    InvalidRequest,
    OAuthError,
    UnsupportedResponseType,
)
from okap_server.authorization.requests import MAX_CLIENT_NAME, ClientInfo
from okap_server.catalog import ProviderCatalog
from okap_server.settings import Settings

MAX_STATE = 1024


class RedirectableError(Exception):
    """An error to send back to a validated redirect_uri (RFC 6749 §4.1.2.1) that errors may
    be sent to (``redirectable``)."""

    def __init__(self, error: OAuthError, redirect_uri: str, state: str | None) -> None:
        super().__init__(error.description)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state


def redirectable(error: OAuthError, redirect_uri: str | None, state: str | None) -> Exception:
    """``error`` as a redirect back to the app if ``redirect_uri`` may receive errors
    (``clients.may_receive_errors``), else ``error`` itself, to be shown on a page: never
    an unprompted redirect to a URI the vault cannot trust (RFC 9700 §4.11.2)."""
    if redirect_uri is not None and may_receive_errors(redirect_uri):
        return RedirectableError(error, redirect_uri, state)
    return error


@dataclass(frozen=True)
class CheckedAuthorize:
    client: ClientInfo
    details: RequestedDetails
    state: str | None
    code_challenge: str
    delegation_allowed: bool = True


def client_from(
    params: Mapping[str, str], client_id: str, redirect_uri: str | None = None
) -> ClientInfo:
    """What the app says about itself on the OAuth front doors (``client_name``,
    ``client_uri``), checked like every front door's (``display_text``): refused, never
    stripped, when it hides characters."""
    name = check_display_text("client_name", params.get("client_name"), MAX_CLIENT_NAME)
    if name is None:
        host = urlsplit(client_id).hostname if "://" in client_id else None
        name = host or client_id
    client_uri = check_display_url("client_uri", params.get("client_uri"))
    if client_uri is None and client_id.startswith(("https://", "http://")):
        client_uri = client_id[:512]
    return ClientInfo(
        client_id=client_id, name=name[:MAX_CLIENT_NAME], url=client_uri, redirect_uri=redirect_uri
    )


def check_client(params: Mapping[str, str], settings: Settings) -> tuple[str, str]:
    """client_id and redirect_uri; errors here are shown on a page, never redirected."""
    pages_host = urlsplit(settings.effective_page_url).hostname
    return check_client_id(params.get("client_id")), check_redirect_uri(
        params.get("redirect_uri"), pages_host
    )


def check_authorize(
    params: Mapping[str, str], catalog: ProviderCatalog, settings: Settings
) -> CheckedAuthorize:
    """Validate every parameter. Errors about client_id or redirect_uri are raised as they
    are; after both are known good, errors are raised as ``redirectable`` makes them."""
    client_id, redirect_uri = check_client(params, settings)
    state = params.get("state") or None
    try:
        if state is not None and len(state) > MAX_STATE:
            raise InvalidRequest(f"state is longer than {MAX_STATE} characters")
        if params.get("response_type") != "code":
            raise UnsupportedResponseType("response_type must be code")
        challenge = pkce.check_challenge(
            params.get("code_challenge"), params.get("code_challenge_method")
        )
        raw = params.get("authorization_details")
        if not raw:
            raise InvalidAuthorizationDetails("authorization_details: is required")
        details = parse_details_json(raw, catalog, settings)
        client = client_from(params, client_id, redirect_uri)
        delegation = delegation_asked(params.get("delegation"))
    except OAuthError as exc:
        raise redirectable(exc, redirect_uri, state) from None
    return CheckedAuthorize(client, details, state, challenge, delegation)


def finish_url(redirect_uri: str, issuer: str, state: str | None, **params: str) -> str:
    """``redirect_uri`` with the response parameters appended (keeping its own query)."""
    values = dict(params)
    if state is not None:
        values["state"] = state
    values["iss"] = issuer
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return f"{redirect_uri}{separator}{urlencode(values)}"
