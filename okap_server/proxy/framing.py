"""How a request body is framed, so that the vault and the upstream read the same body.

The vault decides what a body is from its ``Content-Type``, and checks what it reads. Two
``Content-Type`` headers (one reader takes the first, another the last) or a
``Content-Encoding`` (the upstream would read the decompressed bytes, the vault the
compressed ones) let the upstream read a body the vault never checked: both are refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from okap_server.proxy.errors import AmbiguousBody


def check_framing(headers: Iterable[tuple[str, str]]) -> None:
    """Refuse a body the upstream could read otherwise than the vault (RFC 9110 §8.3,
    §8.4): more than one ``Content-Type``, or any content coding but ``identity``."""
    types = 0
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-type":
            types += 1
            if types > 1:
                raise AmbiguousBody("The request has more than one Content-Type header.")
        elif lowered == "content-encoding" and value.strip().lower() not in ("", "identity"):
            raise AmbiguousBody(
                "The vault does not read compressed request bodies (Content-Encoding); "
                "send the body uncompressed."
            )


def with_content_type(headers: list[tuple[str, str]], value: str) -> list[tuple[str, str]]:
    """``headers`` with its ``Content-Type`` replaced by ``value``."""
    kept = [(name, v) for name, v in headers if name.lower() != "content-type"]
    kept.append(("content-type", value))
    return kept
