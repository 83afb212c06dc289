"""Proxy calls are left out of the server's access log unless asked for: the audit has them.

With ``proxy_access_log`` on they are logged (with credentials redacted):
``test_secrets.py`` runs that way and finds the rewritten line."""

from __future__ import annotations

import httpx
import pytest

from okap_server.context import Vault
from tests.server.proxy.test_sdks import openai_client
from tests.support.grants import entry, make_grant

HI = [{"role": "user", "content": "hi"}]


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]


def test_proxy_calls_skip_the_access_log_by_default(
    vault: Vault, live_url: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    grant = make_grant(vault, entry("openai"))
    openai_client(live_url, grant.token).chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert httpx.get(f"{live_url}/healthz").status_code == 200
    lines = access_lines(debug_logs)
    assert any("GET /healthz" in line for line in lines)  # the access log is on
    assert not any(" /v1/openai/" in line for line in lines)


def test_an_okap_poll_handle_is_redacted_from_the_access_log(
    vault: Vault, live_url: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    """The poll URL's handle collects the token: it is a secret like the token itself."""
    body = {
        "okap": "1.0",
        "authorization_details": [{"type": "ai_model_access", "provider": "openai"}],
        "client": {"name": "Notes"},
    }
    pending = httpx.post(
        f"{live_url}/okap/authorize", json=body, headers={"Prefer": "wait=0"}
    ).json()
    handle = pending["poll_url"].rsplit("/", 1)[1]
    assert httpx.get(pending["poll_url"]).json()["status"] == "pending"
    assert httpx.get(f"{pending['poll_url']}?x=1").status_code == 200
    lines = access_lines(debug_logs)
    polls = [line for line in lines if "GET /okap/authorize/" in line]
    assert len(polls) == 2, lines
    assert all("/okap/authorize/[redacted]" in line for line in polls), polls
    # Nothing the vault logs holds it (httpx's own lines here are this test's client).
    served = [r for r in debug_logs.records if not r.name.startswith(("httpx", "httpcore"))]
    assert not any(handle in r.getMessage() for r in served)
