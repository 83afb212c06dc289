"""Every /api/v1 operation, table-driven from /openapi.json: it names its scope, a token
without that scope gets 403 naming it, no token or an okap_ proxy token gets 401, and a
token in the URL is refused (never logged)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlmodel import select

from okap_server.context import Vault
from okap_server.manage.management_tokens import SCOPES
from okap_server.proxy.redaction import redact
from tests.server.api.conftest import client, mint, problem_of
from tests.support.grants import entry, make_grant

FAKE_ID = "grt_" + "0" * 32


def operations(live_url: str) -> list[tuple[str, str, dict[str, Any]]]:
    document = httpx.get(f"{live_url}/openapi.json").json()
    assert "okapm" in document["components"]["securitySchemes"]
    found = [
        (method.upper(), path, spec)
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/")
        for method, spec in item.items()
    ]
    assert len(found) >= 16, found
    return found


def call(c: httpx.Client, method: str, path: str, **options: Any) -> httpx.Response:
    concrete = path.removeprefix("/api/v1").replace("{grant_id}", FAKE_ID)
    concrete = concrete.replace("{key_id}", "key_x").replace("{account_id}", "acc_x")
    return c.request(method, concrete, **options)


def test_every_operation_needs_its_scope(vault: Vault, live_url: str) -> None:
    ops = operations(live_url)
    for method, path, spec in ops:
        scope = spec["x-okap-scope"]
        assert scope in SCOPES, (method, path)
        assert spec["security"] == [{"okapm": []}], (method, path)
        lacking = [s for s in SCOPES if s != scope]
        with client(live_url, mint(vault, "alice", lacking, admin=True)) as c:
            answer = call(c, method, path, json={})
            assert answer.status_code == 403, (method, path, answer.text)
            body = problem_of(answer)
            assert body["scope"] == scope and scope in body["detail"]
        with client(live_url, mint(vault, "alice", [scope], admin=True)) as c:
            answer = call(c, method, path, json={})
            assert answer.status_code != 403, (method, path, answer.text)


def test_only_management_tokens_open_the_api(vault: Vault, live_url: str) -> None:
    proxy_token = make_grant(vault, entry("openai")).token
    for method, path, _ in operations(live_url):
        for token in (None, proxy_token, "okapm_" + "A" * 49, "Bearer"):
            with client(live_url, token) as c:
                answer = call(c, method, path, json={})
                assert answer.status_code == 401, (method, path, token, answer.text)
                assert problem_of(answer)["type"] == "urn:okap:problem:unauthorized"


def test_a_management_token_never_opens_the_proxy(vault: Vault, live_url: str) -> None:
    token = mint(vault, "alice", list(SCOPES), admin=True)
    answer = httpx.post(
        f"{live_url}/v1/openai/chat/completions",
        headers={"Authorization": f"Bearer {token}"},
        json={"model": "gpt-4o-mini", "messages": []},
    )
    assert answer.status_code == 401, answer.text


def test_a_token_in_the_url_is_refused_and_never_logged(
    vault: Vault, live_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):  # the test's own client would print the URL it sends
        caplog.set_level(logging.WARNING, logger=name)
    token = mint(vault, "alice", ["grants:read"], admin=True)
    for query in ({"access_token": token}, {"token": token}, {"x": token}):
        answer = httpx.get(f"{live_url}/api/v1/grants", params=query)
        assert answer.status_code == 400, answer.text
        assert problem_of(answer)["type"] == "urn:okap:problem:token-in-query"
        assert token not in answer.text
    with client(live_url, token) as c:  # refused even with a good header
        assert c.get("/grants", params={"access_token": token}).status_code == 400
    assert all(token not in r.getMessage() for r in caplog.records)
    for line in (f"GET /api/v1/grants?access_token={token}", f"GET /api/v1/grants?x={token}"):
        assert token not in redact(line)  # what the access log prints (proxy/redaction.py)


def test_the_admin_scope_is_for_admins_only(vault: Vault, live_url: str) -> None:
    from okap_server.accounts.models import Account
    from okap_server.manage.management_tokens import ManagementTokenError, create_token

    mint(vault, "alice", ["admin"], admin=True)  # the first account is the owner
    mint(vault, "bob", ["grants:read"])
    with vault.session() as session:
        bob = session.exec(select(Account).where(Account.username == "bob")).one()
        assert not bob.is_admin
        with pytest.raises(ManagementTokenError, match="admin"):
            create_token(session, bob, name="x", scopes=["admin"])
