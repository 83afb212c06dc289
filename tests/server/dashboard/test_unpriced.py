"""The dashboard lists the person's live grants whose models no price lists (issue 16)."""

from __future__ import annotations

from collections.abc import Callable

from okap_server.context import Vault
from tests.server.dashboard.conftest import Visitor
from tests.support.grants import entry, make_grant, revoke


def test_home_lists_grants_with_unpriced_models(
    vault: Vault, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    bob = people("bob")
    priced = make_grant(
        vault, entry("openai", models=["gpt-5.2"], limits={"daily_spend": 1.0}), username="alice"
    )
    private = make_grant(
        vault,
        entry(
            "groq",
            models=["llama-3.3-70b-versatile", "my-private-llama"],
            limits={"daily_spend": 1.0},
        ),
        username="alice",
        client_name="Private Notes",
    )
    home = alice.page("/").text
    assert 'id="unpriced-grants"' in home
    assert "<code>my-private-llama</code> (groq)" in home
    assert f'href="/apps/{private.grant_id}">Private Notes</a>' in home
    assert "calls are refused under its spend limit" in home
    assert (
        "llama-3.3-70b-versatile</code> (groq)" not in home
        and priced.grant_id not in home.split('id="unpriced-grants"')[1].split("</section>")[0]
    )
    assert 'id="unpriced-grants"' not in bob.page("/").text  # only one's own grants
    revoke(vault, private.grant_id)
    assert 'id="unpriced-grants"' not in alice.page("/").text  # live grants only
