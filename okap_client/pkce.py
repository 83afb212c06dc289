"""Proof Key for Code Exchange with the S256 method (RFC 7636)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def s256_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(code_verifier)))`` (RFC 7636 §4.2)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True)
class Pkce:
    """One verifier/challenge pair; the verifier never leaves the client until the token call."""

    verifier: str
    challenge: str
    method: str = "S256"

    @classmethod
    def generate(cls) -> Pkce:
        # 32 random octets → 43 unreserved characters (RFC 7636 §4.1).
        verifier = _b64url(secrets.token_bytes(32))
        return cls(verifier=verifier, challenge=s256_challenge(verifier))
