"""The access log never prints a token the proxy would read from the URL, however the
query spells it: the redaction decodes the query as the token reader does."""

from __future__ import annotations

import http.client
from urllib.parse import quote, unquote

import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # no storage involved

GENERATE = "/v1/google/v1beta/models/gemini-2.0-flash:generateContent"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """With proxy calls in the access log, so its redaction is what is tested."""
    return settings.model_copy(update={"proxy_access_log": True})


def every_byte_escaped(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


def post(live_url: str, target: str) -> int:
    """POST with the exact request target given (the stdlib sends it as it is)."""
    conn = http.client.HTTPConnection(live_url.removeprefix("http://"), timeout=10)
    try:
        conn.request(
            "POST", target, body=b'{"contents": []}', headers={"content-type": "application/json"}
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_every_spelling_of_a_query_token_is_redacted(
    vault: Vault,
    live_url: str,
    fake_upstream: FakeUpstream,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    token = make_grant(vault, entry("google")).token
    body = token.removeprefix("okap_")
    accepted = {  # each of these is read as the token: the call goes through
        "escaped name": f"?%6Bey={token}",
        "escaped value": f"?key=%6F%6B%61%70_{body}",
        "every byte escaped": f"?{every_byte_escaped('key')}={every_byte_escaped(token)}",
        "plus as a space": f"?key=+{token}",
        "repeated": f"?key=nothing&key={token}",
        "after other params": f"?alt=json&%6b%65%79={quote(token)}&x=1",
    }
    for name, query in accepted.items():
        assert post(live_url, GENERATE + query) == 200, name
    refused = {  # not read as the token, and still never printed
        "semicolon separated": f"?alt=json;key={token}",
        "upper-case name": f"?KEY={token}",
        "double escaped": f"?key={quote(every_byte_escaped(token))}",
        "in the path": f"/v1/google/{every_byte_escaped(token)}/models",
    }
    for name, target in refused.items():
        target = target if target.startswith("/") else GENERATE + target
        assert post(live_url, target) >= 400, name
    assert len(fake_upstream.received) == len(accepted)

    lines = [r.getMessage() for r in debug_logs.records if r.name == "uvicorn.access"]
    assert sum("/v1/google/" in line for line in lines) == len(accepted) + len(refused)
    for line in lines:
        decoded = line
        for _ in range(4):
            decoded = unquote(decoded.replace("+", " "))
        assert body not in decoded, line
