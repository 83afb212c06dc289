"""The "New token" page over real HTTP: a personal token made with the consent page's
form (limits from the person's defaults, changed or cleared), minted by the one use case
the API and the CLI share; shown once, never in a URL; it works with the ``openai`` SDK
and is an app under Apps. A widened expiry or another person's key is refused, nothing
stored; providers without a key are not offered."""

from __future__ import annotations

import re
from collections.abc import Callable

import openai
import pytest
from sqlmodel import select

from okap_server.context import Vault
from okap_server.grants.models import Grant
from tests.server.dashboard.conftest import Visitor
from tests.support.grants import ensure_account, ensure_key
from tests.support.person import parse_page


@pytest.fixture
def backend() -> str:
    return "sqlite"


def _form(visitor: Visitor, **changes: str) -> list[tuple[str, str]]:
    """The page's form as a browser would send it, with ``changes`` (``d0_limit_x`` for
    ``d0.limit.x``) typed in."""
    html = visitor.page("/tokens/new").text
    [form] = [f for f in parse_page(html).forms if f.action == "/tokens"]  # not the picker
    typed = {k.replace("_limit_", ".limit.").replace("d0_", "d0."): v for k, v in changes.items()}
    fields = [(k, typed.pop(k, v)) for k, v in form.fields]
    return fields + list(typed.items())


def _grants(vault: Vault) -> list[Grant]:
    with vault.session() as session:
        return list(session.exec(select(Grant)).all())


def test_a_personal_token_from_the_page_works_and_is_an_app(
    live_url: str, vault: Vault, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    empty = alice.page("/tokens/new").text
    assert "You have no provider keys" in empty and 'action="/tokens"' not in empty
    ensure_key(vault, ensure_account(vault, "alice"), "openai")

    page = alice.page("/tokens/new").text
    assert '<option value="openai" selected>' in page and 'value="anthropic"' not in page
    fields = _form(alice, name="notebook", d0_limit_daily_spend="2.50", d0_limit_monthly_spend="")
    created = alice.client.post("/tokens", data=_multi(fields))
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    match = re.search(r'value="(okap_[A-Za-z0-9_-]+)"', created.text)
    assert match, "the page shows no token"
    token = match.group(1)
    base_url = f"{vault.settings.effective_public_url}/v1/openai"
    assert f"export OPENAI_BASE_URL={base_url} OPENAI_API_KEY={token}" in created.text
    assert token not in str(created.url) and "shown this once" in created.text

    [grant] = _grants(vault)
    assert grant.flow == "personal" and grant.client_name == "notebook"
    limits = grant.details[0]["limits"]
    assert limits["daily_spend"] == 2.5 and limits["monthly_spend"] is None  # cleared stays so
    assert limits["requests_per_minute"] == vault.settings.default_limits.requests_per_minute
    assert token not in str(grant.model_dump())  # only its hash

    client = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
    apps = alice.page("/").text
    assert "notebook" in apps and token not in apps


def test_a_wider_expiry_or_anothers_key_is_refused_and_nothing_stored(
    vault: Vault, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    ensure_key(vault, ensure_account(vault, "alice"), "openai")
    bobs_key = ensure_key(vault, ensure_account(vault, "bob"), "openai")

    later = _form(alice, name="too long", d0_expires="2999-01-01T00:00")
    refused = alice.client.post("/tokens", data=_multi(later))
    assert refused.status_code == 422 and "only be made earlier" in refused.text
    assert "Nothing was stored" in refused.text

    stolen = _form(alice, name="not mine", d0_key_id=bobs_key)
    refused = alice.client.post("/tokens", data=_multi(stolen))
    assert refused.status_code == 422 and "choose one of your openai keys" in refused.text
    assert _grants(vault) == []


def _multi(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data
