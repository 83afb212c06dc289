"""The API's own bounds: a body over the limit is 413 problem details, and each token has
its own rate limit (429 with Retry-After)."""

from __future__ import annotations

import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.server.api.conftest import client, mint, problem_of


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_per_minute": 3})


def test_bodies_over_the_limit_and_tokens_over_their_rate(vault: Vault, live_url: str) -> None:
    first = client(live_url, mint(vault, "alice", ["keys:write", "keys:read"], admin=True))
    second = client(live_url, mint(vault, "alice", ["keys:read"], admin=True))
    huge = {
        "provider": "openai",
        "label": "x",
        "secret": "s" * (vault.settings.form_max_body_bytes),
    }
    answer = first.post("/provider-keys", json=huge)
    assert answer.status_code == 413
    assert problem_of(answer)["type"] == "urn:okap:problem:content-too-large"
    statuses = [first.get("/provider-keys").status_code for _ in range(4)]
    assert statuses[-1] == 429 and 200 in statuses, statuses
    limited = first.get("/provider-keys")
    assert problem_of(limited)["type"] == "urn:okap:problem:rate-limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert second.get("/provider-keys").status_code == 200  # its own bucket
