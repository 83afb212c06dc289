"""Token exchange (RFC 8693) as a front door, over real HTTP on SQLite and PostgreSQL: it
is rate-limited per source like the other doors, a grant's live children are capped, and
the child's optional ``client_id`` is held to the display rules of every other client id
(a NUL or an over-long id once reached PostgreSQL and answered 500; a bidi override was
shown raw on the dashboard)."""

from __future__ import annotations

import pytest
from sqlmodel import col, func, select

from okap_server.context import Vault
from okap_server.grants.models import Grant
from okap_server.settings import Settings
from tests.support.delegation import exchange, openai_entry
from tests.support.grants import entry, make_grant, revoke

CHILD = [openai_entry(models=["gpt-4o-mini"])]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"delegation_max_children": 3, "front_door_per_minute": 8})


def _children(vault: Vault, parent_id: str) -> int:
    with vault.session() as session:
        query = select(func.count()).select_from(Grant)
        found = session.exec(query.where(col(Grant.parent_grant_id) == parent_id)).one()
        return int(found)


def test_a_grant_has_at_most_the_settings_live_children(vault: Vault, live_url: str) -> None:
    parent = make_grant(vault, entry("openai", models=["gpt-4o-mini"]))
    ids = []
    for _ in range(3):
        answer = exchange(live_url, parent.token, CHILD)
        assert answer.status_code == 200, answer.text
    answer = exchange(live_url, parent.token, CHILD)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_grant"
    assert "too many delegated tokens" in answer.json()["error_description"]
    assert _children(vault, parent.grant_id) == 3
    with vault.session() as session:
        ids = list(
            session.exec(
                select(Grant.id).where(col(Grant.parent_grant_id) == parent.grant_id)
            ).all()
        )
    revoke(vault, ids[0])  # a revoked child no longer counts: room for one more
    assert exchange(live_url, parent.token, CHILD).status_code == 200
    assert exchange(live_url, parent.token, CHILD).status_code == 400


def test_the_exchange_is_rate_limited_per_source(vault: Vault, live_url: str) -> None:
    parents = [make_grant(vault, entry("openai", models=["gpt-4o-mini"])) for _ in range(3)]
    answers = [exchange(live_url, parents[i % 3].token, CHILD) for i in range(9)]
    assert [a.status_code for a in answers[:8]] == [200] * 8
    refused = answers[8]
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "temporarily_unavailable"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "client_id",
    ["x" * 600, "agent\x00one", "agent\u202eeno", "agent\u200bone", "tab\tagent"],
    ids=["long", "nul", "bidi", "zero-width", "control"],
)
def test_a_bad_client_id_is_invalid_request_and_issues_nothing(
    vault: Vault, live_url: str, client_id: str
) -> None:
    parent = make_grant(vault, entry("openai", models=["gpt-4o-mini"]))
    answer = exchange(live_url, parent.token, CHILD, client_id=client_id)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert answer.json()["error_description"].startswith("client_id")
    assert _children(vault, parent.grant_id) == 0


def test_a_visible_client_id_names_the_child(vault: Vault, live_url: str) -> None:
    parent = make_grant(vault, entry("openai", models=["gpt-4o-mini"]))
    answer = exchange(live_url, parent.token, CHILD, client_id="  https://jobs.example  ")
    assert answer.status_code == 200, answer.text
    with vault.session() as session:
        child = session.exec(
            select(Grant).where(col(Grant.parent_grant_id) == parent.grant_id)
        ).one()
        assert child.client_id == "https://jobs.example"
