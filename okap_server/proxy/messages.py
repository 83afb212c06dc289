"""The proxy's request and answer as plain data, and the body's reading.

Kept apart from ``service.py`` so that ``forwarding.py`` can name them without importing
the service, which imports forwarding: the two modules had an import cycle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from okap_server.proxy import errors
from okap_server.proxy.framing import check_framing, with_content_type
from okap_server.proxy.ijson import NotIJson, check_charset, read_object
from okap_server.proxy.multipart import is_form_data, read_form
from okap_server.proxy.relay import Relay


@dataclass
class ProxyRequest:
    method: str
    provider: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes
    body_too_large: bool = False
    # Reads the body (and sets the two fields above) once the token is known to be good,
    # so an unknown token never costs the vault a body's worth of memory. None: ``body``
    # is already all of it.
    read_body: Callable[[], Awaitable[tuple[bytes, bool]]] | None = None


@dataclass
class ProxyResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    stream: Relay | None = None
    media_type: str | None = None


def parse_body(request: ProxyRequest, headers: dict[str, str]) -> dict[str, Any] | None:
    """The JSON body as an object, None when there is none; 400 if it does not parse.

    A ``multipart/form-data`` body gives its text fields (``multipart.read_form``), and is
    replaced in ``request`` by the form re-encoded from the parts read, so the upstream
    reads exactly what the vault checked."""
    if not request.body:
        return None
    content_type = headers.get("content-type", "")
    check_framing(request.headers)
    if is_form_data(content_type):
        form = read_form(request.body, content_type)
        request.body = form.body
        request.headers = with_content_type(request.headers, form.content_type)
        headers["content-type"] = form.content_type
        return form.fields
    try:  # whatever the Content-Type: a lenient upstream may read any body as JSON
        check_charset(content_type)
        return read_object(request.body)  # I-JSON: read as the provider reads it
    except NotIJson as exc:
        if "json" not in content_type:
            return None  # raw bytes: refused unless the endpoint takes them (forwarding)
        raise errors.InvalidJson(str(exc)) from None
