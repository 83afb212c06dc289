"""Public clients without registration: what a client_id and a redirect_uri may be.

Like OpenRouter's PKCE flow, any app may ask; the ``client_id`` is its URL or name and is
shown as unverified. A ``redirect_uri`` is https, or http on a loopback IP literal with any
port (RFC 8252 §7.3); it is matched exactly between /authorize and /token (RFC 9700 §4.1.3).
It is never on the host of the vault's own pages: cookies are not isolated by port (RFC 6265
§8.5), so a redirect target there would receive the person's session. An internationalised
host must be a valid IDN; the consent page shows its ASCII (punycode) form beside it.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import httpx

from okap_server.authorization.display_text import hidden_problem
from okap_server.authorization.errors import InvalidClient, InvalidRequest

MAX_CLIENT_ID = 512
MAX_REDIRECT_URI = 2048


def check_client_id(client_id: str | None) -> str:
    if not client_id or not client_id.strip():
        raise InvalidClient("client_id is required (your app's URL or name)")
    if len(client_id) > MAX_CLIENT_ID:
        raise InvalidClient("client_id is too long")
    problem = hidden_problem(client_id)
    if problem:
        raise InvalidClient(f"client_id {problem}")
    return client_id.strip()


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ascii_host(host: str | None) -> str | None:
    """The host as a browser looks it up: lower case, IDNA-encoded (RFC 5891), no trailing
    dot; None when it is not a valid host name."""
    if not host:
        return None
    if host.isascii():
        return host.lower().rstrip(".")
    try:
        raw = httpx.URL(scheme="https", host=host).raw_host
    except (httpx.InvalidURL, ValueError):
        return None
    return raw.decode("ascii").lower().rstrip(".")


def check_redirect_uri(uri: str | None, pages_host: str | None = None) -> str:
    """https anywhere, or http on 127.0.0.1/[::1] with any port; no fragment, no userinfo;
    never on ``pages_host``, the host of the vault's own pages."""
    if not uri:
        raise InvalidRequest("redirect_uri is required")
    if len(uri) > MAX_REDIRECT_URI:
        raise InvalidRequest("redirect_uri is too long")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise InvalidRequest("redirect_uri is not a URL") from None
    if parts.fragment or "#" in uri:
        raise InvalidRequest("redirect_uri must not contain a fragment")
    if parts.username or parts.password:
        raise InvalidRequest("redirect_uri must not contain user information")
    if not parts.hostname:
        raise InvalidRequest("redirect_uri has no host")
    host = ascii_host(parts.hostname)
    if host is None:
        raise InvalidRequest("redirect_uri: the host is not a valid internationalised name")
    if pages_host and host == ascii_host(pages_host):
        raise InvalidRequest(
            "redirect_uri must not be on the vault's own host: use http://127.0.0.1:PORT/"
        )
    if parts.scheme == "https":
        return uri
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return uri
    raise InvalidRequest(
        "redirect_uri must be https, or http on a loopback IP such as http://127.0.0.1:PORT/"
    )


def may_receive_errors(uri: str) -> bool:
    """Whether an error may be sent to this (already checked) redirect_uri without asking
    the person: only a loopback IP literal (RFC 8252 §7.3), where an app on the person's own
    machine listens. An error redirect happens before anyone signs in or consents, so it is
    an open redirector unless the vault trusts the URI (RFC 9700 §4.11.2). With no client
    registration every https redirect_uri is self-asserted, and a client_id naming the same
    site is self-asserted too, so neither makes the URI trusted: such errors are shown on a
    page instead. (After the person decides on the consent page, the answer still goes to
    the redirect_uri the page showed them.)"""
    parts = urlsplit(uri)
    return parts.scheme == "http" and is_loopback_host(parts.hostname)


def callback_is_risky(uri: str | None) -> bool:
    """A callback that is neither https nor loopback: the consent page warns about it."""
    if not uri:
        return False
    parts = urlsplit(uri)
    if parts.scheme == "https":
        return False
    return not (
        parts.scheme == "http"
        and (is_loopback_host(parts.hostname) or parts.hostname == "localhost")
    )
