"""PKCE (RFC 7636), S256 only, enforced at both ends (RFC 9700 §2.1.1, §4.8.2)."""

from __future__ import annotations

import hmac
import re

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from okap_server.authorization.errors import InvalidGrant, InvalidRequest

# RFC 7636 §4.1: 43-128 characters of [A-Z a-z 0-9 - . _ ~].
VERIFIER_PATTERN = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# base64url(SHA-256) without padding is exactly 43 characters.
CHALLENGE_PATTERN = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def check_challenge(challenge: str | None, method: str | None) -> str:
    """At /authorize and /par: a challenge is required, and only S256."""
    if not challenge:
        raise InvalidRequest("code_challenge is required (PKCE S256)")
    if (method or "plain") != "S256":
        raise InvalidRequest("code_challenge_method must be S256")
    if not CHALLENGE_PATTERN.fullmatch(challenge):
        raise InvalidRequest("code_challenge is not a base64url SHA-256 value")
    return challenge


def verify(challenge: str | None, verifier: str | None) -> None:
    """At /token: the verifier must hash to the stored challenge; no challenge, no verifier."""
    if not challenge:
        raise InvalidGrant("a code_verifier was sent but no code_challenge was")
    if not verifier:
        raise InvalidGrant("code_verifier is required")
    if not VERIFIER_PATTERN.fullmatch(verifier):
        raise InvalidGrant("code_verifier is malformed")
    if not hmac.compare_digest(create_s256_code_challenge(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
