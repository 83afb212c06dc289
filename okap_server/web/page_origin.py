"""The pages' origin: the one host where the vault's cookies live and may be used.

Cookies are scoped by host, not by port (RFC 6265 §8.5), and an app's loopback redirect is
``http://127.0.0.1:PORT/...`` (RFC 8252 §7.3). A vault whose pages set cookies on
``127.0.0.1`` would hand the person's session to every app it redirects there. So:

1. The pages live on ``Settings.effective_page_url``: the public URL, with a loopback IP
   literal replaced by ``localhost`` (a host name no redirect URI may use,
   ``authorization/clients.py``). On a vault on this machine, a page request that reaches
   it under any other loopback name (``127.0.0.1``, ``[::1]``, ``localhost.``) is sent to
   that URL (GET/HEAD: ``307``) or refused (``403``), so no cookie is ever set elsewhere.
   Vault cookies a browser still sends there (from an older version) are expired, and the
   session they name is revoked. The API (``/oauth/``, ``/okap/``, ``/v1/``, metadata,
   health) answers on every host: apps and SDKs use the IP literal.
2. A state-changing page request from another origin is refused (``403``), whatever
   cookies it carries: ``Sec-Fetch-Site`` must be ``same-origin`` when the browser sends
   it; otherwise an ``Origin`` other than ``null`` must be the request's own. A page on
   another port of the same host is same-*site*, not same-origin, so SameSite cannot stop
   it; this does (login CSRF, RFC 9700 §4.7).

A plain ASGI middleware: API requests pay one prefix check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from okap_server.settings import Settings
from okap_server.web import cookies

API_PREFIXES = (
    "/oauth/",
    "/okap/",
    "/v1/",
    "/api/",  # the management API: bearer tokens only, no cookies
    "/.well-known/",
    "/static/",
    "/healthz",
    "/readyz",
    "/metrics",  # Prometheus: a bearer token or none (OKAP_METRICS_PUBLIC), no cookies
    "/openapi.json",
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def normal_host(host: str | None) -> str:
    """Lower case, as a browser keys cookies (a trailing dot stays: ``localhost.`` is
    another cookie host than ``localhost``, though both reach this machine)."""
    return (host or "").lower()


def is_loopback_name(host: str | None) -> bool:
    """``localhost``, ``*.localhost`` (RFC 6761 §6.3) or a loopback IP literal."""
    name = normal_host(host).rstrip(".").strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def authority(host_header: str, default_port: int) -> tuple[str, int] | None:
    """(host, port) of a Host or Origin authority; None when it does not parse."""
    try:
        parts = urlsplit("//" + host_header)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None:
        return None
    return normal_host(parts.hostname), port if port is not None else default_port


def is_page(path: str) -> bool:
    return not path.startswith(API_PREFIXES)


@dataclass(frozen=True)
class PageOrigin:
    """Where the pages are, precomputed from the settings at start."""

    url: str
    host: str
    port: int
    scheme: str
    local: bool  # the pages are on this machine: other loopback names are redirected

    @classmethod
    def from_settings(cls, settings: Settings) -> PageOrigin:
        url = settings.effective_page_url
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or DEFAULT_PORTS[scheme]
        host = normal_host(parts.hostname)
        return cls(url, host, port, scheme, is_loopback_name(host))

    def misdirected(self, host_header: str | None) -> bool:
        """A request for this vault under another loopback name than the pages' own. Only
        the name counts: cookies are keyed by host, not port, so a port forward to the
        pages' host name shares their cookies and is no leak."""
        if not self.local:
            return False
        if not host_header:
            return True
        seen = authority(host_header, self.port)
        if seen is None:
            return True
        return is_loopback_name(seen[0]) and seen[0] != self.host

    def same_origin(self, headers: dict[bytes, bytes]) -> bool:
        """Was this request sent by a page of its own origin (or by no browser at all)?"""
        fetch_site = headers.get(b"sec-fetch-site")
        if fetch_site is not None:
            return fetch_site == b"same-origin"
        origin = headers.get(b"origin")
        if origin is None or origin == b"null":  # no browser, or no-referrer (old browsers)
            return True
        try:
            parts = urlsplit(origin.decode("latin-1"))
            sent = authority(parts.netloc, DEFAULT_PORTS.get(parts.scheme, 0))
        except ValueError:
            return False
        own = authority(headers.get(b"host", b"").decode("latin-1"), self.port)
        return sent is not None and sent in (own, (self.host, self.port))


def _vault_cookies(headers: dict[bytes, bytes]) -> dict[str, str]:
    """The vault's cookies in a Cookie header, by name (with or without ``__Host-``).

    Split by hand (RFC 6265 §5.4: ``name=value`` pairs joined by ``; ``), not with
    ``http.cookies.SimpleCookie``, which drops the whole header when any one pair is
    malformed: another site's odd cookie must not shield a stale vault cookie from expiry."""
    names = {*cookies.ALL, *(cookies.HOST_PREFIX + name for name in cookies.ALL)}
    found: dict[str, str] = {}
    for pair in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name in names:
            found[name] = value.strip().strip('"')
    return found


def _expiring(found: dict[str, str]) -> list[tuple[bytes, bytes]]:
    headers = []
    for name in found:
        secure = "; Secure" if name.startswith(cookies.HOST_PREFIX) else ""
        for path in ("/", "/setup"):  # /setup: where older versions put okap_setup
            value = f"{name}=; Max-Age=0; Path={path}; HttpOnly; SameSite=lax{secure}"
            headers.append((b"set-cookie", value.encode("latin-1")))
    return headers


class PageOriginMiddleware:
    """Layers 1 and 2 of the module docstring, in front of every page and API route."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        origin: PageOrigin,
        templates: jinja2.Environment,
        revoke_session: Callable[[str], None],
    ) -> None:
        self.app = app
        self.origin = origin
        self.templates = templates
        self.revoke_session = revoke_session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        page = is_page(path)
        if not page and not self.origin.local:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host")
        if self.origin.misdirected(host.decode("latin-1") if host is not None else None):
            await self._misdirected(scope, receive, send, headers, page)
            return
        if page and scope["method"] not in SAFE_METHODS and not self.origin.same_origin(headers):
            await self._refuse(
                scope,
                receive,
                send,
                "This form was sent from another site or another port of this computer. "
                "Open the vault yourself and try again.",
                [],
            )
            return
        await self.app(scope, receive, send)

    async def _misdirected(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], page: bool
    ) -> None:
        found = _vault_cookies(headers)
        for name, value in found.items():
            if name.endswith(cookies.SESSION) and value:
                await run_in_threadpool(self.revoke_session, value)
        expiring = _expiring(found)
        if not page:
            await self.app(scope, receive, _with_headers(send, expiring))
            return
        if scope["method"] in SAFE_METHODS:
            query = scope.get("query_string", b"").decode("latin-1")
            location = self.origin.url + scope["path"] + (f"?{query}" if query else "")
            response: Response = RedirectResponse(location, status_code=307)
            response.headers["cache-control"] = "no-store"
            response.raw_headers.extend(expiring)
            await response(scope, receive, send)
            return
        await self._refuse(
            scope,
            receive,
            send,
            f"The vault's pages are at {self.origin.url}. Open them there and try again.",
            expiring,
        )

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        message: str,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        html = self.templates.get_template("error.html").render(
            request_path=scope["path"],
            signed_in=None,
            csrf_token="",
            title="Security check failed",
            message=message,
        )
        response = HTMLResponse(html, status_code=403, headers={"cache-control": "no-store"})
        response.raw_headers.extend(extra)
        await response(scope, receive, send)


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    if not extra:
        return send

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return sending
