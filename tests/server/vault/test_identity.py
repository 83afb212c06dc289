"""``/healthz`` proves which vault answers only to someone holding its master key, and
publishes nothing stable about the key: no fingerprint, nothing two answers share."""

from __future__ import annotations

import httpx
import pytest

from okap_server.context import Vault
from okap_server.vault.crypto import KeyRing, generate_master_key
from okap_server.vault.identity import new_challenge, prove, valid_challenge, verify


def test_a_proof_verifies_with_the_same_key_only() -> None:
    ours, theirs = KeyRing(generate_master_key()), KeyRing(generate_master_key())
    challenge = new_challenge()
    proof = prove(ours, challenge)
    assert verify(ours, challenge, proof.salt, proof.mac)
    assert not verify(theirs, challenge, proof.salt, proof.mac)
    assert not verify(ours, new_challenge(), proof.salt, proof.mac)  # not replayable
    assert not verify(ours, challenge, None, proof.mac)


def test_the_same_challenge_never_gets_the_same_answer() -> None:
    ring = KeyRing(generate_master_key())
    challenge = new_challenge()
    first, second = prove(ring, challenge), prove(ring, challenge)
    assert first.salt != second.salt and first.mac != second.mac


@pytest.mark.parametrize("challenge", [None, "", "short", "x" * 129, "not/url safe!!!!!!"])
def test_only_a_nonce_shaped_challenge_is_answered(challenge: str | None) -> None:
    assert not valid_challenge(challenge)


def test_healthz_reveals_no_fingerprint(live_url: str, vault: Vault) -> None:
    plain = httpx.get(f"{live_url}/healthz").json()
    assert plain == {"status": "ok"}
    challenge = new_challenge()
    answers = [
        httpx.get(f"{live_url}/healthz", params={"challenge": challenge}).json() for _ in range(2)
    ]
    for answer in answers:
        proof = answer["proof"]
        assert set(answer) == {"status", "proof"}
        assert verify(vault.keyring, challenge, proof["salt"], proof["mac"])
    assert answers[0]["proof"]["salt"] != answers[1]["proof"]["salt"]
    assert answers[0]["proof"]["mac"] != answers[1]["proof"]["mac"]
    bad = httpx.get(f"{live_url}/healthz", params={"challenge": "x" * 500})
    assert bad.status_code == 200 and bad.json() == {"status": "ok"}
