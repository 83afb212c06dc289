"""When a live grant already answers a request: same providers, models and capabilities,
and every limit the app named at the value it named (defaults filled in do not count)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlmodel import col, select

from okap_server.authorization.reuse import same_access
from okap_server.clock import utcnow
from okap_server.context import Vault
from okap_server.grants.models import Grant
from tests.server.authorization.conftest import (
    RedirectListener,
    code_from,
    redeem,
    start_code_flow,
)
from tests.support.person import Person


def entry(provider: str = "openai", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "ai_model_access",
        "provider": provider,
        "models": ["gpt-4o-mini"],
        "capabilities": ["chat"],
        "limits": {"monthly_spend": 10, "daily_spend": None},
    }
    return {**base, **changes}


def granted(**changes: Any) -> dict[str, Any]:
    """The stored grant entry: the unnamed limits filled from the defaults, a key chosen."""
    limits = {"monthly_spend": 10, "daily_spend": 1.0, "requests_per_minute": 60}
    return {**entry(limits=limits), "key_id": "key_1", **changes}


def test_the_same_ask_is_answered() -> None:
    assert same_access([granted()], [entry()])


def test_a_different_ask_is_not() -> None:
    assert not same_access([granted()], [entry(models=["gpt-4o"])])
    assert not same_access([granted()], [entry(capabilities=["chat", "embeddings"])])
    assert not same_access([granted()], [entry(limits={"monthly_spend": 20})])
    assert not same_access([granted()], [entry(), entry("anthropic")])
    assert not same_access([granted(), granted(provider="anthropic")], [entry()])


def test_a_narrowed_grant_is_not_the_same_access() -> None:
    assert not same_access([granted(limits={"monthly_spend": 2})], [entry()])


def _reuse(person: Person, consent: str, grant_id: str | None = None) -> httpx.Response:
    """Click "Reuse existing access" as a browser would: the page's form plus the button."""
    page = person.open(consent).text
    offered = re.search(r'name="reuse_grant_id" value="([^"]+)"', page)
    assert offered, "the page offers no existing access"
    form = person.form_of(page, "/consent/")
    return _post(person, form.fields, grant_id or offered[1], form.action)


def test_the_code_flow_reuses_the_grant_with_a_fresh_token(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri)
        code = code_from(person.approve(consent).location, listener)["code"]
        first = redeem(app, code, verifier, listener.redirect_uri).json()

        consent, verifier = start_code_flow(app, listener.redirect_uri)
        page = " ".join(person.open(consent).text.split())
        assert "Notes already has this access" in page
        reused = _reuse(person, consent)
        assert reused.status_code == 303, reused.text
        code = code_from(reused.headers["location"], listener)["code"]
        second = redeem(app, code, verifier, listener.redirect_uri).json()

        assert second["access_token"] != first["access_token"]
        assert second["authorization_details"] == first["authorization_details"]
        old = app.get("/okap/usage", headers={"Authorization": f"Bearer {first['access_token']}"})
        new = app.get("/okap/usage", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert old.status_code == 401 and new.status_code == 200
    with vault.session() as session:
        assert len(session.exec(select(Grant)).all()) == 1


def test_a_grant_revoked_meanwhile_is_not_reused(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    with httpx.Client(base_url=live_url) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri)
        code = code_from(person.approve(consent).location, listener)["code"]
        redeem(app, code, verifier, listener.redirect_uri)
        consent, _ = start_code_flow(app, listener.redirect_uri)
        with vault.session() as session:
            [grant] = session.exec(select(Grant)).all()
            grant.revoked_at = utcnow()
            session.add(grant)
            session.commit()
            grant_id = grant.id
        refused = _reuse_stale(person, consent, grant_id)
    assert refused.status_code == 422
    assert "The access this app had is gone" in refused.text


def _reuse_stale(person: Person, consent: str, grant_id: str) -> httpx.Response:
    """The page was opened while the grant was live; the click comes after its revocation."""
    page = person.open(consent).text
    form = person.form_of(page, "/consent/")
    return _post(person, form.fields, grant_id, form.action)


def _post(
    person: Person, fields: list[tuple[str, str]], grant_id: str, action: str
) -> httpx.Response:
    data: dict[str, list[str]] = {}
    for name, value in [*fields, ("decision", "reuse"), ("reuse_grant_id", grant_id)]:
        data.setdefault(name, []).append(value)
    return person.client.post(action, data=data)


def test_unticking_delegation_applies_to_the_reused_grant(
    live_url: str, person: Person, openai_key: str, listener: RedirectListener, vault: Vault
) -> None:
    """The delegation box is in the same form as "Reuse existing access": unticked, the
    reused grant can no longer be delegated (it once stayed delegable)."""
    from tests.support.delegation import exchange, openai_entry

    with httpx.Client(base_url=live_url) as app:
        consent, verifier = start_code_flow(app, listener.redirect_uri)
        code = code_from(person.approve(consent).location, listener)["code"]
        redeem(app, code, verifier, listener.redirect_uri)
        for ticked in (True, False):
            consent, verifier = start_code_flow(app, listener.redirect_uri)
            page = person.open(consent).text
            offered = re.search(r'name="reuse_grant_id" value="([^"]+)"', page)
            assert offered
            form = person.form_of(page, "/consent/")
            assert ("allow_delegation", "yes") in form.fields  # ticked by default
            fields = [f for f in form.fields if ticked or f[0] != "allow_delegation"]
            reused = _post(person, fields, offered[1], form.action)
            assert reused.status_code == 303, reused.text
            code = code_from(reused.headers["location"], listener)["code"]
            token = redeem(app, code, verifier, listener.redirect_uri).json()["access_token"]
            with vault.session() as session:
                roots = select(Grant).where(col(Grant.parent_grant_id).is_(None))
                [grant] = session.exec(roots).all()
                assert grant.delegation_allowed is ticked
            child = exchange(live_url, token, [openai_entry(models=["gpt-4o-mini"])])
            assert child.status_code == (200 if ticked else 400), child.text
    assert child.json()["error"] == "invalid_grant"
    assert "does not allow delegating" in child.json()["error_description"]
