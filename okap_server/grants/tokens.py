"""The ``okap_`` access token and ``okapm_`` management token formats, and their hash.

``okap_`` (or ``okapm_``) + 43 base62 characters of randomness (256 bits) + 6 base62
characters of CRC32 checksum, so secret scanners can recognise a token and reject typos
offline (the same shape GitHub uses for its tokens). Only the SHA-256 of a token is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib

TOKEN_PREFIX = "okap_"
# Management tokens (the /api/v1 JSON API): same shape, their own prefix, so a scanner and
# the vault tell them from proxy tokens at a glance and neither is ever taken for the other.
MANAGEMENT_PREFIX = "okapm_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_CHARS = 43  # 62**43 > 2**256
_CHECKSUM_CHARS = 6
_BODY = f"[0-9A-Za-z]{{{_RANDOM_CHARS + _CHECKSUM_CHARS}}}"


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_CHARS)


def _new(prefix: str) -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_CHARS))
    return f"{prefix}{body}{_checksum(body)}"


def _looks_like(prefix: str, value: str) -> bool:
    if not value.startswith(prefix) or re.fullmatch(_BODY, value[len(prefix) :]) is None:
        return False
    rest = value[len(prefix) :]
    body, check = rest[:_RANDOM_CHARS], rest[_RANDOM_CHARS:]
    return hmac.compare_digest(_checksum(body), check)


def new_access_token() -> str:
    return _new(TOKEN_PREFIX)


def looks_like_token(value: str) -> bool:
    """Format and checksum check, done before any lookup."""
    return _looks_like(TOKEN_PREFIX, value)


def new_management_token() -> str:
    return _new(MANAGEMENT_PREFIX)


def looks_like_management_token(value: str) -> bool:
    """Format and checksum check of an ``okapm_`` token, done before any lookup."""
    return _looks_like(MANAGEMENT_PREFIX, value)


def token_hash(value: str) -> str:
    """What is stored and looked up: the hex SHA-256 of the token."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random secret for codes, handles and session cookies."""
    return secrets.token_urlsafe(nbytes)
