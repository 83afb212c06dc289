"""Which headers cross the proxy, in each direction (RFC 9110 §7.6.1).

Hop-by-hop headers, and any header the ``Connection`` header names, belong to one
connection and are never forwarded. ``Host`` is the upstream's, never the client's.
Client credentials and cookies (which may be the vault's own session) never go upstream.

Nor does any header that picks the account, organisation or project a request is billed to
at the provider (``OpenAI-Organization``, ``OpenAI-Project``, ``x-goog-user-project``...): a
key may belong to several organisations or projects of its owner, and the grant was given on
the key as its owner uses it, not on whichever of them an app names. The class is closed by
name: any header with a ``-``-separated word of ``BILLING_WORDS`` in its name is dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from okap_server.proxy.providers.base import CLIENT_CREDENTIAL_HEADERS

HOP_BY_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# Recomputed or rewritten by the vault, in either direction.
_REQUEST_DROP = (
    HOP_BY_HOP
    | CLIENT_CREDENTIAL_HEADERS
    | {
        "host",
        "content-length",
        "accept-encoding",
        "cookie",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
# A header naming any of these words routes billing or picks an account at the provider.
BILLING_WORDS: frozenset[str] = frozenset(
    {"organization", "organisation", "org", "project", "workspace", "account", "tenant", "billing"}
)


@functools.lru_cache(maxsize=512)
def forwardable(name: str) -> bool:
    """Whether a request header may go upstream, leaving aside those ``Connection``
    names: not dropped above, and not ``OpenAI-Organization``, ``OpenAI-Project``,
    ``x-goog-user-project`` or any provider's like of them. Remembered per name: apps send
    a handful, so a request costs a dictionary lookup per header."""
    lowered = name.lower()
    return lowered not in _REQUEST_DROP and BILLING_WORDS.isdisjoint(lowered.split("-"))


_RESPONSE_DROP = HOP_BY_HOP | {"content-length", "content-encoding", "set-cookie", "date", "server"}


def _connection_named(headers: Iterable[tuple[str, str]]) -> set[str]:
    named: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            named.update(part.strip().lower() for part in value.split(",") if part.strip())
    return named


def upstream_request_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The client's headers fit to forward (the real key is added afterwards)."""
    items = list(headers)
    named = _connection_named(items)
    kept = [(n, v) for n, v in items if forwardable(n) and not (named and n.lower() in named)]
    kept.append(("accept-encoding", "identity"))
    return kept


def client_response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream's response headers fit to pass back to the app."""
    items = list(headers)
    drop = _RESPONSE_DROP | _connection_named(items)
    return [(n, v) for n, v in items if n.lower() not in drop]
