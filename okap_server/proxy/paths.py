"""Turning the path an app sent into one that stays under the provider's base URL.

The upstream URL is always the configured upstream base + ``/`` + a normalised path.
Any form of a dot segment (``..``, ``%2e%2e``, ``%252e%252e``), a backslash, a control
character or an encoded ``?``/``#`` is refused, so nothing escapes the base (RFC 3986 §5.2.4).
"""

from __future__ import annotations

import functools
from urllib.parse import quote, unquote

from okap_server.proxy.errors import InvalidPath

# Characters kept as they are when the path is re-encoded (RFC 3986 pchar minus '%').
_SAFE = "/:@!$&'()*+,;=-._~"
_MAX_DECODE_ROUNDS = 4


@functools.lru_cache(maxsize=1024)
def normalise_path(raw: str) -> str:
    """The path relative to the provider's base, percent-encoded canonically.

    ``raw`` is the still-encoded path after ``/v1/{provider}/``. Remembered for the last
    1,024 paths (apps call a handful); a refused path raises every time.
    """
    once = unquote(raw)
    fully = once
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote(fully)
        if decoded == fully:
            break
        fully = decoded
    else:
        raise InvalidPath()
    if any(ch in fully for ch in "\\?#") or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in fully):
        raise InvalidPath()
    segments = [s for s in once.split("/") if s]
    if any(s in (".", "..") for s in fully.split("/")):
        raise InvalidPath()
    if not segments:
        raise InvalidPath()
    return quote("/".join(segments), safe=_SAFE)


def join_upstream(base: str, path: str) -> str:
    return f"{base.rstrip('/')}/{path}"
