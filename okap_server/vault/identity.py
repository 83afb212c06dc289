"""Proving "this URL is served by this vault" without a public fingerprint of its key.

``okap-server doctor`` runs where the vault's database and master key are, and asks the
server at the public URL to prove it holds the same master key: it sends a fresh random
``challenge`` to ``/healthz``, and the vault answers ``HMAC(k, challenge || salt)`` with a
``salt`` of its own, new each time; ``k`` is derived one-way from the master key for this
purpose only (``KeyRing.mac_key``), so replicas of one vault agree. Doctor computes the
same MAC and compares in constant time.

Nothing in the answer is stable: an unauthenticated caller learns no fingerprint of the key
material (an earlier ``/healthz`` published one), and cannot link two URLs to one vault by
sending both the same challenge, since each answer mixes in its own salt. A MAC on the
caller's nonce is no oracle for anything else: ``k`` keys nothing but this proof.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from okap_server.vault.crypto import KeyRing

PURPOSE = "vault-identity-proof-v1"
# A challenge is the caller's random nonce: 16 to 128 URL-safe characters.
CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


@dataclass(frozen=True)
class Proof:
    salt: str
    mac: str


def new_challenge() -> str:
    return secrets.token_urlsafe(32)


def valid_challenge(challenge: str | None) -> bool:
    return challenge is not None and CHALLENGE.match(challenge) is not None


def _mac(keyring: KeyRing, challenge: str, salt: str) -> str:
    message = f"{challenge}.{salt}".encode()
    return hmac.new(keyring.mac_key(PURPOSE), message, "sha256").hexdigest()


def prove(keyring: KeyRing, challenge: str) -> Proof:
    """The vault's answer to a (valid) challenge, with a fresh salt."""
    salt = secrets.token_urlsafe(16)
    return Proof(salt=salt, mac=_mac(keyring, challenge, salt))


def verify(keyring: KeyRing, challenge: str, salt: object, mac: object) -> bool:
    """Did the answer come from a vault holding this master key?"""
    if not isinstance(salt, str) or not isinstance(mac, str) or len(salt) > 128:
        return False
    return hmac.compare_digest(_mac(keyring, challenge, salt), mac)
