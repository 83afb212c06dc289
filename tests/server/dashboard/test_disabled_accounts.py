"""A disabled account's apps stop, including tokens collected after it was disabled
(issue 15): its grants are refused by the proxy, and its pending approvals are withdrawn
so no token is minted from them later."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from sqlmodel import select

from okap_server.accounts.models import Account
from okap_server.context import Vault
from okap_server.grants.models import Grant
from okap_server.settings import Settings
from tests.server.dashboard.conftest import Visitor
from tests.support.grants import entry, make_grant

HI = [{"role": "user", "content": "hi"}]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DETAILS = [{"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A grant view cached for a minute: a refusal must come from invalidation."""
    return settings.model_copy(update={"proxy_grant_cache_seconds": 60})


def chat(live_url: str, token: str) -> Any:
    app = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)
    return app.chat.completions.create(model="gpt-4o-mini", messages=HI)


def ask(live_url: str, name: str) -> dict[str, Any]:
    body = {"okap": "1.0", "authorization_details": DETAILS, "client": {"name": name}}
    answer = httpx.post(f"{live_url}/okap/authorize", json=body, headers={"Prefer": "wait=0"})
    assert answer.json()["status"] == "pending", answer.text
    return dict(answer.json())


def _id(vault: Vault, username: str) -> str:
    with vault.session() as session:
        return session.exec(select(Account.id).where(Account.username == username)).one()


def test_tokens_old_and_collected_after_disabling_are_refused(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    admin = people("root", admin=True)
    bob = people("bob")
    bob.post("/keys", {"provider": "openai", "label": "bob", "secret": "sk-bob-0123456789abcdef"})
    # An app collected its token while Bob was active: it works.
    before = ask(live_url, "Old App")
    bob.approve(before["consent_url"])
    old_token = httpx.get(before["poll_url"]).json()["token"]
    assert chat(live_url, old_token).choices
    # Two more approvals no app has collected yet: an OKAP request and a device request.
    waiting = ask(live_url, "Late App")
    bob.approve(waiting["consent_url"])
    device = httpx.post(
        f"{live_url}/oauth/device_authorization",
        data={"client_id": "okap-cli", "authorization_details": json.dumps(DETAILS)},
    ).json()
    bob.approve_device(device["user_code"])

    assert admin.post(f"/admin/accounts/{_id(vault, 'bob')}/disable").status_code == 303

    with pytest.raises(openai.AuthenticationError):
        chat(live_url, old_token)
    late = httpx.get(waiting["poll_url"]).json()
    assert late["status"] == "denied" and "token" not in late
    polled = httpx.post(
        f"{live_url}/oauth/token",
        data={
            "grant_type": DEVICE_GRANT,
            "device_code": device["device_code"],
            "client_id": "okap-cli",
        },
    )
    assert polled.status_code == 400 and polled.json()["error"] == "access_denied"
    with vault.session() as session:
        grants = session.exec(select(Grant)).all()
    assert len(grants) == 1 and grants[0].revoked_at is not None  # only the old one, revoked


def test_the_proxy_refuses_any_grant_of_a_disabled_account(vault: Vault, live_url: str) -> None:
    """Even a grant the disabling did not revoke (one minted in the same instant): the
    account's flag travels with the grant the proxy loads."""
    issued = make_grant(vault, entry("openai"), username="carol")
    with vault.session() as session:
        carol = session.get(Account, issued.account_id)
        assert carol is not None
        carol.disabled = True
        session.add(carol)
        session.commit()
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(live_url, issued.token)
    assert refused.value.status_code == 401
    bearer = {"Authorization": f"Bearer {issued.token}"}
    assert httpx.get(f"{live_url}/okap/usage", headers=bearer).status_code == 401
    introspected = httpx.post(
        f"{live_url}/oauth/introspect", headers=bearer, data={"token": issued.token}
    )
    assert introspected.status_code == 401
    with vault.session() as session:
        grant = session.get(Grant, issued.grant_id)
        assert grant is not None and grant.revoked_at is None  # refused all the same
