"""The ``okap_`` access token format and its storage hash.

``okap_`` + 43 base62 characters of randomness (256 bits) + 6 base62 characters of CRC32
checksum, so secret scanners can recognise a token and reject typos offline (the same
shape GitHub uses for its tokens). Only the SHA-256 of a token is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib

TOKEN_PREFIX = "okap_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_CHARS = 43  # 62**43 > 2**256
_CHECKSUM_CHARS = 6
_SHAPE = re.compile(f"{TOKEN_PREFIX}[0-9A-Za-z]{{{_RANDOM_CHARS + _CHECKSUM_CHARS}}}")


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_CHARS)


def new_access_token() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_CHARS))
    return f"{TOKEN_PREFIX}{body}{_checksum(body)}"


def looks_like_token(value: str) -> bool:
    """Format and checksum check, done before any lookup."""
    if _SHAPE.fullmatch(value) is None:
        return False
    rest = value[len(TOKEN_PREFIX) :]
    body, check = rest[:_RANDOM_CHARS], rest[_RANDOM_CHARS:]
    return hmac.compare_digest(_checksum(body), check)


def token_hash(value: str) -> str:
    """What is stored and looked up: the hex SHA-256 of the token."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random secret for codes, handles and session cookies."""
    return secrets.token_urlsafe(nbytes)
