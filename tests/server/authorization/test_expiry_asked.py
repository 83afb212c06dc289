"""Every front door that stores a request records which expiries the app named, and the
consent page says "(asked …)" only for those; otherwise that the vault's default applies.

An expiry the app names at exactly the default's length is still the app's ask: the page
no longer guesses from how close the expiry lies to "created + default days"."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select

from okap_server.authorization.models import AuthorizationRequest
from okap_server.clock import isoformat_z, utcnow
from okap_server.context import Vault
from tests.server.authorization.conftest import (
    authorize_params,
    details_json,
    entry,
    pkce_pair,
)
from tests.support.person import Person

NAMED = "asked by the app"
DEFAULT = "the vault's default; the app did not ask"


def _in_days(days: int) -> str:
    return isoformat_z(utcnow() + timedelta(days=days))


def _stored(vault: Vault) -> list[bool] | None:
    with vault.session() as session:
        row = session.exec(
            select(AuthorizationRequest).order_by(col(AuthorizationRequest.created_at).desc())
        ).first()
        assert row is not None
        return row.expiry_asked


def _okap(app: httpx.Client, *entries: dict[str, object]) -> str:
    answer = app.post(
        "/okap/authorize",
        json={
            "okap": "1.0",
            "authorization_details": list(entries),
            "client": {"name": "Expiry App", "url": "https://expiry.example"},
        },
    ).json()
    assert answer["status"] == "pending", answer
    return str(answer["consent_url"])


def _seen(person: Person, consent_url: str) -> str:
    return " ".join(person.open(consent_url).text.split())


def test_okap_binding_records_each_entrys_ask(live_url: str, vault: Vault, person: Person) -> None:
    default_days = vault.settings.default_grant_days
    with httpx.Client(base_url=live_url) as app:
        consent = _okap(
            app,
            entry("openai", expires=_in_days(default_days)),  # the default's length, named
            entry("anthropic"),
        )
    assert _stored(vault) == [True, False]
    page = _seen(person, consent)
    assert f"({NAMED})" in page and f"({DEFAULT})" in page
    assert page.count("asked: ") == 1


def test_no_expiry_named_says_the_default_applies(
    live_url: str, vault: Vault, person: Person
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent = _okap(app, entry("openai"))
    assert _stored(vault) == [False]
    page = _seen(person, consent)
    assert NAMED not in page and "asked: " not in page
    assert f"the vault's default of {vault.settings.default_grant_days} days" in page


@pytest.mark.parametrize("named", [True, False])
def test_the_code_flow_and_par_record_the_ask(live_url: str, vault: Vault, named: bool) -> None:
    asked = entry(models=["gpt-4o-mini"], **({"expires": _in_days(30)} if named else {}))
    _, challenge = pkce_pair()
    params = authorize_params("http://127.0.0.1:9/cb", challenge)
    params["authorization_details"] = details_json(asked)
    with httpx.Client(base_url=live_url) as app:
        assert app.get("/oauth/authorize", params=params).status_code == 303
        assert _stored(vault) == [named]
        assert app.post("/oauth/par", data=params).status_code == 201
        assert _stored(vault) == [named]


@pytest.mark.parametrize("named", [True, False])
def test_the_device_and_reference_doors_record_the_ask(
    live_url: str, vault: Vault, named: bool
) -> None:
    expiry = {"expires": _in_days(7)} if named else {}
    with httpx.Client(base_url=live_url) as app:
        device = app.post(
            "/oauth/device_authorization",
            data={
                "client_id": "cli-expiry",
                "authorization_details": details_json(entry(**expiry)),
            },
        )
        assert device.status_code == 200, device.text
        assert _stored(vault) == [named]
        reference = app.post(
            "/okap/request",
            json={"provider": "openai", "app_name": "Flat", **expiry},
            timeout=30,
        )
        assert reference.status_code in (200, 202), reference.text
        assert _stored(vault) == [named]
