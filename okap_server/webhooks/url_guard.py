"""Which webhook URLs the vault will call: the SSRF guard.

A webhook URL is typed by a person, but the vault is the one that calls it, from inside
its network. So: ``https`` only, or ``http`` to a loopback address when the operator allows
it (on by default: a personal vault's receiver is often on the same machine). The host is
resolved and every address it names is checked: private, link-local (cloud metadata at
169.254.169.254), multicast, reserved and unspecified targets are refused unless the
operator allows private targets. The worker resolves again at each delivery and connects
to the address it checked (no second lookup an attacker's DNS could answer differently),
and never follows a redirect.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """A webhook URL the vault will not call; the message names why."""


@dataclass(frozen=True)
class UrlPolicy:
    allow_loopback_http: bool = True
    allow_private: bool = False


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def _addresses(host: str, port: int) -> list[IpAddress]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl(f"the host {host[:100]!r} does not resolve") from None
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise UnsafeUrl(f"the host {host[:100]!r} does not resolve")
    return found


def _plain(address: IpAddress) -> IpAddress:
    """An IPv4-mapped IPv6 address (``::ffff:10.0.0.1``) as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _refusal(address: IpAddress, policy: UrlPolicy) -> str | None:
    address = _plain(address)
    if address.is_loopback:
        return None if policy.allow_loopback_http else "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "a reserved, multicast or unspecified address"
    if address.is_private or not address.is_global:
        return None if policy.allow_private else "a private address"
    return None


def check_url(url: str, policy: UrlPolicy) -> Target:
    """The URL checked and resolved, or :class:`UnsafeUrl` naming why not."""
    if len(url) > MAX_URL:
        raise UnsafeUrl(f"the URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("the URL is not a valid http(s) URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("the URL must be https (or http to this machine)")
    host = parts.hostname or ""
    if not host:
        raise UnsafeUrl("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrl("the URL must not carry a user name or password")
    port = port or (443 if scheme == "https" else 80)
    addresses = _addresses(host, port)
    for address in addresses:
        why = _refusal(address, policy)
        if why is not None:
            raise UnsafeUrl(f"the host {host[:100]!r} resolves to {why}")
    if scheme == "http" and not all(_plain(a).is_loopback for a in addresses):
        raise UnsafeUrl("the URL must be https; http is allowed only to this machine (loopback)")
    if scheme == "http" and not policy.allow_loopback_http:
        raise UnsafeUrl("the URL must be https (http to loopback is turned off)")
    return Target(url, scheme, host, port, str(addresses[0]))
