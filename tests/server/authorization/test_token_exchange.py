"""Token exchange (RFC 8693) at the token endpoint, over real HTTP on SQLite and PostgreSQL:
a narrower child is issued, anything wider or any bad subject token is refused with the
RFC error code, and nothing is written by a refusal."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, func, select

from okap_server.authorization.models import Grant
from okap_server.context import Vault
from tests.support.delegation import ACCESS_TOKEN, TOKEN_EXCHANGE, exchange, openai_entry
from tests.support.grants import entry, make_grant, revoke
from tests.support.person import Person

PARENT_LIMITS = {"daily_spend": 5.0, "requests_per_minute": 100}


def _parent(vault: Vault, **kwargs: object) -> tuple[str, str]:
    issued = make_grant(
        vault,
        entry("openai", models=["gpt-4o-mini", "gpt-4o"], limits=PARENT_LIMITS),
        entry("anthropic"),
        **kwargs,  # type: ignore[arg-type]
    )
    return issued.token, issued.grant_id


def _grants(vault: Vault) -> int:
    with vault.session() as session:
        return int(session.exec(select(func.count()).select_from(Grant)).one())


def test_a_narrower_child_is_issued_with_its_chain(vault: Vault, live_url: str) -> None:
    token, parent_id = _parent(vault)
    answer = exchange(
        live_url,
        token,
        [openai_entry(models=["gpt-4o-mini"], limits={"daily_spend": 1.0})],
        client_name="Sub-agent 1",
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["issued_token_type"] == ACCESS_TOKEN
    assert body["token_type"] == "Bearer" and body["access_token"].startswith("okap_")
    assert 0 < body["expires_in"] <= 30 * 86400
    (granted,) = body["authorization_details"]
    assert granted["models"] == ["gpt-4o-mini"]
    assert granted["base_url"] == f"{vault.settings.effective_public_url}/v1/openai"
    assert granted["limits"]["daily_spend"] == 1.0
    assert granted["limits"]["requests_per_minute"] == 100  # inherited, never dropped
    assert "key_id" not in granted
    with vault.session() as session:
        child = session.exec(select(Grant).where(col(Grant.parent_grant_id) == parent_id)).one()
        assert child.ancestry == [parent_id] and child.client_name == "Sub-agent 1"
        assert child.act == {"sub": "https://app.example", "grant_id": parent_id}
    seen = httpx.post(
        f"{live_url}/oauth/introspect",
        data={"token": body["access_token"]},
        headers={"Authorization": f"Bearer {body['access_token']}"},
    ).json()
    assert seen["active"] is True
    assert seen["act"] == {"sub": "https://app.example", "grant_id": parent_id}
    assert seen["delegation"]["parent_grant_id"] == parent_id
    assert seen["delegation"]["chain"] == [parent_id] and seen["delegation"]["depth"] == 1
    meta = httpx.get(f"{live_url}/.well-known/oauth-authorization-server").json()
    assert TOKEN_EXCHANGE in meta["grant_types_supported"]


@pytest.mark.parametrize(
    ("child", "field"),
    [
        (openai_entry(models=["gpt-4.1"]), "authorization_details[0].models[0]"),
        (openai_entry(models=["gpt-*"]), "authorization_details[0].models[0]"),
        (openai_entry(models=[]), "authorization_details[0].models"),
        (openai_entry(limits={"daily_spend": 6}), "authorization_details[0].limits.daily_spend"),
        (
            openai_entry(limits={"requests_per_minute": None}),
            "authorization_details[0].limits.requests_per_minute",
        ),
        (
            openai_entry(capabilities=["chat", "images"]),
            "authorization_details[0].capabilities[1]",
        ),
        (
            {"type": "ai_model_access", "provider": "google"},
            "authorization_details[0].provider",
        ),
        (openai_entry(expires="2099-01-01T00:00:00Z"), "authorization_details[0].expires"),
    ],
    ids=[
        "model",
        "glob",
        "all-models",
        "higher-limit",
        "dropped-limit",
        "capability",
        "provider",
        "expiry",
    ],
)
def test_a_wider_child_is_refused_naming_the_field(
    vault: Vault, live_url: str, child: dict[str, object], field: str
) -> None:
    token, _ = _parent(vault)
    before = _grants(vault)
    answer = exchange(live_url, token, [child])
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "invalid_authorization_details"
    assert body["error_description"].startswith(field)
    assert _grants(vault) == before


def test_bad_subject_tokens_are_invalid_grant_and_issue_nothing(
    vault: Vault, live_url: str
) -> None:
    token, parent_id = _parent(vault)
    expired = make_grant(vault, entry("openai"), expires_in=timedelta(seconds=-5)).token
    foreign = "okap_" + "A" * 49  # well formed shape, wrong checksum, unknown
    child = [openai_entry(models=["gpt-4o-mini"])]
    before = _grants(vault)
    for subject in (
        "garbage",
        foreign,
        expired,
        token[:-1] + ("y" if token.endswith("x") else "x"),
    ):
        answer = exchange(live_url, subject, child)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", subject
    revoke(vault, parent_id)
    answer = exchange(live_url, token, child)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert _grants(vault) == before


def test_the_subject_token_type_must_be_an_access_token(vault: Vault, live_url: str) -> None:
    token, _ = _parent(vault)
    child = [openai_entry(models=["gpt-4o-mini"])]
    for kind in ("urn:ietf:params:oauth:token-type:refresh_token", "urn:x:jwt", ""):
        answer = exchange(live_url, token, child, subject_token_type=kind)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    answer = exchange(live_url, token, None)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_a_grant_whose_person_forbade_delegation_cannot_be_exchanged(
    vault: Vault, live_url: str
) -> None:
    token, parent_id = _parent(vault)
    with vault.session() as session:
        parent = session.get(Grant, parent_id)
        assert parent is not None
        parent.delegation_allowed = False
        session.add(parent)
        session.commit()
    answer = exchange(live_url, token, [openai_entry(models=["gpt-4o-mini"])])
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert "does not allow delegating" in answer.json()["error_description"]


def test_delegation_depth_is_capped_by_the_setting(vault: Vault, live_url: str) -> None:
    token, _ = _parent(vault)
    depth = vault.settings.delegation_max_depth
    assert depth == 4
    for _ in range(depth):
        answer = exchange(live_url, token, [openai_entry(models=["gpt-4o-mini"])])
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
    answer = exchange(live_url, token, [openai_entry(models=["gpt-4o-mini"])])
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert "depth" in answer.json()["error_description"]


OKAP_BODY: dict[str, object] = {
    "okap": "1.0",
    "authorization_details": [
        {"type": "ai_model_access", "provider": "openai", "models": ["gpt-4o-mini"]}
    ],
    "client": {"name": "Agents", "url": "https://agents.example"},
}


def _granted(live_url: str, person: Person, body: dict[str, object], **narrowing: object) -> str:
    with httpx.Client(base_url=live_url, timeout=10) as app:
        pending = app.post("/okap/authorize", json=body, headers={"Prefer": "wait=1"}).json()
        page = person.open(pending["consent_url"]).text
        person.approve(pending["consent_url"], **narrowing)
        granted = app.get(pending["poll_url"]).json()
    assert granted["status"] == "granted", granted
    assert "Let this app hand narrower tokens on" in page
    return str(granted["token"])


def test_the_person_may_forbid_delegation_on_the_consent_page(
    live_url: str, person: Person, openai_key: str
) -> None:
    allowed = _granted(live_url, person, OKAP_BODY)  # the default: allowed
    assert exchange(live_url, allowed, [openai_entry()]).status_code == 200
    forbidden = _granted(live_url, person, OKAP_BODY, allow_delegation=False)
    answer = exchange(live_url, forbidden, [openai_entry()])
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert "does not allow delegating" in answer.json()["error_description"]


def test_an_app_may_ask_for_a_token_no_one_can_delegate(
    live_url: str, person: Person, openai_key: str
) -> None:
    token = _granted(live_url, person, {**OKAP_BODY, "delegation": "forbidden"})
    answer = exchange(live_url, token, [openai_entry()])
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    with httpx.Client(base_url=live_url, timeout=10) as app:
        bad = app.post("/okap/authorize", json={**OKAP_BODY, "delegation": "maybe"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


def test_a_child_may_name_the_endpoints_a_parents_wider_word_implies(
    vault: Vault, live_url: str
) -> None:
    """``vision`` (the reference vocabulary) means the chat endpoints: a child asking
    ``chat`` under it is no wider, while ``completions`` (only within ``code``) is."""
    issued = make_grant(vault, entry("openai", capabilities=["vision"], limits=PARENT_LIMITS))
    narrower = exchange(live_url, issued.token, [openai_entry(capabilities=["chat"])])
    assert narrower.status_code == 200, narrower.text
    wider = exchange(live_url, issued.token, [openai_entry(capabilities=["completions"])])
    assert wider.status_code == 400
    assert "authorization_details[0].capabilities[0]" in wider.json()["error_description"]
