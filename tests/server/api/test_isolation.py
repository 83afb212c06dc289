"""Cross-account isolation on every /api/v1 operation with an id in its path (table-driven
from /openapi.json): bob's token, with every scope, gets 404 for alice's grant, key and
(for a member) nothing of hers; the same 404 as an id that does not exist."""

from __future__ import annotations

from typing import Any

import httpx

from okap_server.context import Vault
from okap_server.manage.management_tokens import SCOPES
from tests.server.api.conftest import ALL_BUT_ADMIN, client, mint, problem_of

BODIES: dict[str, Any] = {
    "PATCH /api/v1/grants/{grant_id}": {"providers": {"openai": {"models": ["gpt-4o-mini"]}}},
    "PATCH /api/v1/provider-keys/{key_id}": {"label": "mine now"},
}


def test_another_accounts_ids_are_not_found(vault: Vault, live_url: str) -> None:
    alice = client(live_url, mint(vault, "alice", list(SCOPES), admin=True))
    bob = client(live_url, mint(vault, "bob", ALL_BUT_ADMIN))
    key = alice.post(
        "/provider-keys", json={"provider": "openai", "label": "a", "secret": "sk-" + "a" * 40}
    )
    key_id = key.json()["id"]
    minted = alice.post(
        "/tokens",
        json={
            "name": "x",
            "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
        },
    )
    grant_id = minted.json()["grant_id"]
    etag = alice.get(f"/grants/{grant_id}").headers["etag"]
    document = httpx.get(f"{live_url}/openapi.json").json()
    checked = 0
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/") or "{" not in path or "{account_id}" in path:
            continue
        for method in item:
            label = f"{method.upper()} {path}"
            answers = []
            for grant, key_ in ((grant_id, key_id), ("grt_" + "0" * 32, "key_" + "0" * 32)):
                concrete = path.replace("{grant_id}", grant).replace("{key_id}", key_)
                answer = bob.request(
                    method.upper(),
                    concrete.removeprefix("/api/v1"),
                    json=BODIES.get(label),
                    headers={"If-Match": etag},
                )
                assert answer.status_code == 404, (label, answer.text)
                body = problem_of(answer)
                answers.append((body["type"], body["title"], body["detail"]))
            assert answers[0] == answers[1], label  # indistinguishable from a missing id
            checked += 1
    assert checked >= 6
    # Lists and reports of bob's show none of alice's.
    assert bob.get("/grants").json()["data"] == []
    assert bob.get("/provider-keys").json()["data"] == []
    assert [e["kind"] for e in bob.get("/events").json()["data"]] == ["api_token_created"]
    assert bob.get("/usage").json()["data"] == []
    assert bob.get("/usage", params={"grant": grant_id}).status_code == 404
    assert bob.get("/me/usage").json()["grants"] == []
    # Alice's things are untouched.
    assert alice.get(f"/grants/{grant_id}").json()["active"] is True
    assert alice.get("/provider-keys").json()["data"][0]["label"] == "a"
    # An admin's token sees only the admin's own grants, not bob's.
    bob.post(
        "/provider-keys", json={"provider": "openai", "label": "b", "secret": "sk-" + "b" * 40}
    )
    bobs = bob.post(
        "/tokens",
        json={
            "name": "y",
            "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
        },
    ).json()["grant_id"]
    assert alice.get(f"/grants/{bobs}").status_code == 404
    assert bobs not in alice.get("/grants").text
    # And a member's token has no admin scope, whatever it asked for.
    assert bob.get("/accounts").status_code == 403
