"""``okap-server doctor``'s look at the running server: does the public URL answer, and is
what answers there this vault? It sends ``/healthz`` a fresh challenge and checks the
vault's proof against its own master key (``vault/identity.py``): the server publishes
nothing stable about its key, so only someone holding the key can tell which vault it is.

A vault whose public URL points nowhere, or at another vault, hands out consent links and
tokens that lead somewhere else; that is worth one line before someone debugs the app."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.engine import Engine

from okap_server.cli.doctor_result import Result
from okap_server.settings import Settings
from okap_server.vault.crypto import KeyRing
from okap_server.vault.identity import new_challenge, verify
from okap_server.vault.masterkey import load_keyring, read_check

NAME = "server"


def this_vault(settings: Settings, engine: Engine) -> KeyRing | None:
    """This vault's keys, or None when it has no master key yet (or a wrong one)."""
    try:
        if read_check(engine) is None:
            return None
        return load_keyring(settings, engine, create=False)
    except Exception:  # the master key check reports why; this check just cannot compare
        return None


def check_server(settings: Settings, engine: Engine | None) -> Result:
    url = settings.effective_public_url
    challenge = new_challenge()
    try:
        with httpx.Client(timeout=settings.doctor_timeout_seconds) as client:
            response = client.get(f"{url}/healthz", params={"challenge": challenge})
    except httpx.HTTPError:
        return Result(
            "warn",
            NAME,
            f"nothing answers at {url}: start it with `okap-server serve`, "
            "or set OKAP_PUBLIC_URL to where it runs",
        )
    body = _json(response)
    if response.status_code != 200 or body.get("status") != "ok":
        return Result(
            "FAIL", NAME, f"{url} answers HTTP {response.status_code}, but not as an okap vault"
        )
    proof = body.get("proof")
    ours = this_vault(settings, engine) if engine is not None else None
    if ours is None:
        return Result("ok", NAME, f"a vault answers at {url}")
    if not isinstance(proof, dict):
        return Result(
            "warn",
            NAME,
            f"a vault answers at {url} but proves nothing about which one it is "
            "(an older okap?): cannot tell whether it is this vault",
        )
    if not verify(ours, challenge, proof.get("salt"), proof.get("mac")):
        return Result(
            "FAIL",
            NAME,
            f"a different vault answers at {url}: it runs elsewhere, with another database "
            "or master key than this one. Point OKAP_PUBLIC_URL at this vault's server",
        )
    return Result("ok", NAME, f"a vault answers at {url} (this vault)")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
