"""``okap-server doctor``'s look at the running server: does the public URL answer, and is
what answers there this vault?

A vault whose public URL points nowhere, or at another vault, hands out consent links and
tokens that lead somewhere else; that is worth one line before someone debugs the app."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.engine import Engine

from okap_server.cli.doctor_result import Result
from okap_server.settings import Settings
from okap_server.vault.masterkey import load_keyring, read_check
from okap_server.web.health import vault_fingerprint

NAME = "server"


def this_vault(settings: Settings, engine: Engine) -> str | None:
    """This vault's fingerprint, or None when it has no master key yet (or a wrong one)."""
    try:
        if read_check(engine) is None:
            return None
        return vault_fingerprint(load_keyring(settings, engine, create=False))
    except Exception:  # the master key check reports why; this check just cannot compare
        return None


def check_server(settings: Settings, engine: Engine | None) -> Result:
    url = settings.effective_public_url
    try:
        with httpx.Client(timeout=settings.doctor_timeout_seconds) as client:
            response = client.get(f"{url}/healthz")
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
    theirs = body.get("vault")
    ours = this_vault(settings, engine) if engine is not None else None
    if isinstance(theirs, str) and ours is not None and theirs != ours:
        return Result(
            "FAIL",
            NAME,
            f"a different vault answers at {url}: it runs elsewhere, with another database "
            "or master key than this one. Point OKAP_PUBLIC_URL at this vault's server",
        )
    same = " (this vault)" if ours is not None and theirs == ours else ""
    return Result("ok", NAME, f"a vault answers at {url}{same}")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
