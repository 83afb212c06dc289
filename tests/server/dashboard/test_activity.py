"""The activity log: requests and security events of this account, filters, CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import anthropic
import openai
import pytest

from okap_server.context import Vault
from tests.server.dashboard.conftest import Visitor
from tests.support.fake_upstream import FakeUpstream, Respond
from tests.support.grants import entry, make_grant


def test_requests_and_security_events_filtered_and_exported(
    vault: Vault, live_url: str, people: Callable[..., Visitor], fake_upstream: FakeUpstream
) -> None:
    alice = people("alice")
    one = make_grant(vault, entry("openai"), username="alice", client_name="First App")
    two = make_grant(vault, entry("anthropic"), username="alice", client_name="Second App")
    first = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=one.token, max_retries=0)
    first.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
    fake_upstream.script("openai", Respond(400))
    with pytest.raises(openai.BadRequestError):
        first.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "b"}])
    second = anthropic.Anthropic(
        base_url=f"{live_url}/v1/anthropic", api_key=two.token, max_retries=0
    )
    second.messages.create(
        model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "c"}]
    )
    alice.post(f"/apps/{two.grant_id}/revoke")

    page = ""
    for _ in range(100):
        page = alice.page("/activity").text
        if page.count("kind-request") >= 3:
            break
    assert "gpt-4o-mini" in page and "claude-haiku-4-5" in page
    assert "Signed in" in page and "Access revoked" in page

    only_first = alice.page(f"/activity?app={one.grant_id}&kind=requests").text
    assert "gpt-4o-mini" in only_first and "claude" not in only_first
    failed = alice.page("/activity?status=failed&kind=requests").text
    assert failed.count("kind-request") == 1 and "400" in failed
    by_provider = alice.page("/activity?provider=anthropic").text
    assert "claude-haiku-4-5" in by_provider and "gpt-4o-mini" not in by_provider
    refused_events = alice.page("/activity?kind=security&status=failed").text
    assert "kind-security" not in refused_events  # nothing failed for alice
    assert "</span> Signed in" in alice.page("/activity?kind=security&status=ok").text
    security = alice.page(f"/activity?kind=security&app={two.grant_id}").text
    assert "Access revoked" in security and "kind-request" not in security

    exported = alice.page("/activity.csv?kind=requests&period=day")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["model"] for r in rows} == {"gpt-4o-mini", "gpt-4o", "claude-haiku-4-5"}
    ok = next(r for r in rows if r["model"] == "gpt-4o-mini")
    assert ok["status"] == "200" and ok["app"] == "First App" and ok["input_tokens"] == "12"
    assert float(ok["cost_usd"]) >= 0
    assert one.token not in exported.text and two.token not in exported.text


def test_csv_cells_cannot_run_as_spreadsheet_formulas(
    vault: Vault, live_url: str, people: Callable[..., Visitor]
) -> None:
    alice = people("alice")
    issued = make_grant(vault, entry("openai"), username="alice", client_name="=HYPERLINK(1)")
    app = openai.OpenAI(base_url=f"{live_url}/v1/openai", api_key=issued.token, max_retries=0)
    app.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
    text = ""
    for _ in range(100):
        text = alice.page("/activity.csv?kind=requests").text
        if "gpt-4o-mini" in text:
            break
    assert "'=HYPERLINK(1)" in text
