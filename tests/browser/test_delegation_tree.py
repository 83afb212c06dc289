"""The delegated tokens under an app, in a real browser: the tree on the app's page, a
Revoke per node that ends that node and everything below it, and the consent page's
"hand narrower tokens on" checkbox."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from okap_server.accounts.service import create_account
from okap_server.context import Vault
from tests.support.delegation import child_token, openai_entry
from tests.support.grants import entry, make_grant

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def test_the_delegation_tree_revokes_a_branch(vault: Vault, live_url: str, page: Page) -> None:
    with vault.session() as session:
        create_account(session, "alice", PASSWORD, is_admin=True)
        session.commit()
    host = make_grant(vault, entry("openai"), username="alice", client_name="Agent Host")
    worker = child_token(live_url, host.token, [openai_entry()])
    child_token(live_url, worker, [openai_entry(models=["gpt-4o-mini"])])
    child_token(live_url, host.token, [openai_entry()])
    page.goto(f"{live_url}/signin")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Connected apps")).to_be_visible()
    page.get_by_role("link", name="Agent Host").first.click()
    tree = page.locator(".delegation-tree")
    expect(page.get_by_role("heading", name="Delegated tokens")).to_be_visible()
    expect(tree.locator("li")).to_have_count(3)
    expect(tree.locator("li li")).to_have_count(1)  # the grandchild, nested
    revokes = tree.get_by_role("link", name="Revoke Agent Host (delegated)")
    expect(revokes).to_have_count(3)
    revokes.first.click()  # the first child: its branch goes, the sibling stays
    page.get_by_role("button", name="Revoke access").click()
    page.goto(f"{live_url}/apps/{host.grant_id}")
    expect(tree.get_by_text("Ended")).to_have_count(2)
    expect(tree.get_by_role("link", name="Revoke Agent Host (delegated)")).to_have_count(1)
