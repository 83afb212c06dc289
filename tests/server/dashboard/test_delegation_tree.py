"""The app detail page's delegated tokens (RFC 8693), over real HTTP: a tree with each
token's spend and a Revoke per node; revoking a node ends it and everything below it,
and leaves its parent and its siblings."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import openai
import pytest

from okap_server.context import Vault
from tests.server.dashboard.conftest import Visitor
from tests.support.delegation import child_token, openai_entry
from tests.support.fake_upstream import FakeUpstream, FakeUsage
from tests.support.grants import entry, make_grant

HI = [{"role": "user", "content": "hi"}]


def _chat(live_url: str, token: str) -> None:
    ai = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=token, max_retries=0)
    ai.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=100)


def _ids(page: str) -> list[str]:
    """The grant ids the tree links to, in page order."""
    tree = page.split('class="delegation-tree"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'href="/apps/(grt_[0-9a-f]+)" class="app-name"', tree)


def test_the_app_page_shows_its_delegated_tokens_as_a_tree_with_a_revoke_each(
    vault: Vault, live_url: str, people: Callable[..., Visitor], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.usage["openai"] = FakeUsage(input=100, output=100)
    alice = people("alice")
    parent = make_grant(vault, entry("openai"), username="alice", client_name="Agent Host")
    child = child_token(live_url, parent.token, [openai_entry()])
    grandchild = child_token(live_url, child, [openai_entry(models=["gpt-4o-mini"])])
    sibling = child_token(live_url, parent.token, [openai_entry()])
    _chat(live_url, grandchild)
    for _ in range(100):  # settlement is off the hot path
        page = alice.page(f"/apps/{parent.grant_id}").text
        if "spent $0.000075" in page:
            break
        time.sleep(0.05)
    assert "Delegated tokens" in page
    ids = _ids(page)
    assert len(ids) == 3
    assert page.count("spent $0.000075") == 2  # the child and the grandchild that spent it
    assert page.count('class="button danger small"') == 3  # a Revoke per node
    home = alice.page("/").text
    assert "Agent Host" in home and "(delegated)" not in home  # children live in the tree
    child_id = ids[0]
    child_page = alice.page(f"/apps/{child_id}").text
    assert f'href="/apps/{parent.grant_id}" class="app-name">Agent Host</a>' in child_page
    assert alice.post(f"/apps/{child_id}/revoke").status_code == 303
    for token in (child, grandchild):
        with pytest.raises(openai.AuthenticationError):
            _chat(live_url, token)
    _chat(live_url, parent.token)
    _chat(live_url, sibling)
    after = alice.page(f"/apps/{parent.grant_id}").text
    assert after.count('class="button danger small"') == 1  # only the sibling is live
    assert after.count(">Ended</span>") == 2
