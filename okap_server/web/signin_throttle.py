"""The sign-in throttle: slows password guessing without letting a stranger lock anyone out.

Counting failures per account alone would let anyone who knows a username lock its owner
out by typing wrong passwords. Instead (OWASP "Slow Down Online Guessing Attacks with Device
Cookies"), failures are counted per key, from the audit trail (``web/throttle.py``):

- a *known browser*, one that signed in to this account before and holds its
  ``okap_device`` cookie, is judged by its own failures only: 10 (``OKAP_SIGNIN_MAX_FAILURES``);
- any other browser by its address's failures for this account (10), its address's
  failures for any username (20), and the account's failures from everywhere (100, a guess
  spread over many addresses).

Past a limit the key waits a minute after its last failure, doubling with each further
failure, up to 15 minutes. A stranger's failures thus slow down only the stranger's own
address; the owner's correct password is taken from a known browser, and from any address
that has not been failing, unless the account is under a guess from 10+ addresses at once.

The cookie is sealed with the master key (AES-256-GCM, ``KeyRing``), so nobody can make one
for an account without signing in to it; it carries the account id, a random browser id
(recorded with the browser's failures) and when it was issued. It proves nothing else: the
password is still checked.
"""

from __future__ import annotations

import base64
import binascii
import os
import time

from fastapi import Request, Response
from sqlmodel import Session

from okap_server.audit.events import record_event
from okap_server.audit.models import SecurityEvent
from okap_server.context import Vault
from okap_server.vault.crypto import NONCE_BYTES, DecryptionError, Sealed
from okap_server.web import cookies
from okap_server.web.sessions import client_ip, vault_of
from okap_server.web.throttle import NONE, backoff, failures

KIND = "signin_failed"
ADDRESS_FACTOR = 2  # failures from one address, for any username
ACCOUNT_FACTOR = 10  # failures for one account, from every address
COOKIE_DAYS = 180
COOKIE_AAD = b"okap-known-browser-v1"


def cookie_name(vault: Vault) -> str:
    return cookies.cookie_name(vault.settings, cookies.DEVICE)


def _seal(vault: Vault, account_id: str, browser_id: str) -> str:
    plain = f"{account_id}\x1f{browser_id}\x1f{int(time.time())}".encode()
    sealed = vault.keyring.seal(plain, COOKIE_AAD)
    blob = base64.urlsafe_b64encode(sealed.nonce + sealed.ciphertext).decode().rstrip("=")
    return f"{sealed.master_key_id}.{blob}"


def _open(vault: Vault, value: str | None) -> tuple[str, str] | None:
    """(account id, browser id) of a genuine, unexpired cookie; None for anything else."""
    if not value or len(value) > 400 or "." not in value:
        return None
    key_id, _, blob = value.partition(".")
    try:
        raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        sealed = Sealed(key_id, raw[:NONCE_BYTES], raw[NONCE_BYTES:])
        plain = vault.keyring.open(sealed, COOKIE_AAD).decode()
        account_id, browser_id, issued = plain.split("\x1f")
        age = time.time() - int(issued)
    except (binascii.Error, DecryptionError, UnicodeDecodeError, ValueError):
        return None
    if not 0 <= age <= COOKIE_DAYS * 86_400:
        return None
    return account_id, browser_id


class SigninThrottle:
    """The throttle's view of one sign-in attempt: who is asking, from where, and whether
    this browser signed in to the named account before."""

    def __init__(self, request: Request, session: Session, account_id: str | None) -> None:
        self.vault = vault_of(request)
        self.session = session
        self.account_id = account_id
        self.ip = client_ip(request)
        known = _open(self.vault, request.cookies.get(cookie_name(self.vault)))
        self.browser_id = known[1] if known and known[0] == account_id else None

    def wait(self) -> float:
        """Seconds this attempt must wait; 0 when the password may be checked now."""
        limit = self.vault.settings.signin_max_failures
        event = SecurityEvent
        if self.browser_id is not None:
            mine = failures(
                self.session, KIND, event.detail["browser"].as_string() == self.browser_id
            )
            return backoff(mine, limit)
        address = failures(self.session, KIND, event.ip == self.ip) if self.ip else NONE
        waits = [backoff(address, ADDRESS_FACTOR * limit)]
        if self.account_id is not None:
            pair = failures(
                self.session, KIND, event.account_id == self.account_id, event.ip == self.ip
            )
            everywhere = failures(self.session, KIND, event.account_id == self.account_id)
            waits += [backoff(pair, limit), backoff(everywhere, ACCOUNT_FACTOR * limit)]
        return max(waits)

    def failed(self) -> None:
        """Record the failure in the audit trail (the caller commits)."""
        detail = {"browser": self.browser_id} if self.browser_id else {}
        record_event(self.session, KIND, account_id=self.account_id, ip=self.ip, **detail)

    def remember(self, response: Response, account_id: str) -> None:
        """After a successful sign-in: this browser is known to this account from now on."""
        known = self.browser_id if account_id == self.account_id else None
        cookies.set_cookie(
            response,
            self.vault.settings,
            cookies.DEVICE,
            _seal(self.vault, account_id, known or os.urandom(12).hex()),
            max_age=COOKIE_DAYS * 86_400,
            samesite="strict",
        )


def refusal_text(seconds: float) -> str:
    """What the sign-in page says to a browser that must wait."""
    whole = max(1, -(-int(seconds) // 60))
    wait = "a minute" if whole == 1 else f"{whole} minutes"
    return f"Too many failed sign-ins. Wait {wait} and try again."
