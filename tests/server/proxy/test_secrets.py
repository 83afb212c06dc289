"""Neither the real key nor the okap token appears in any log line, at DEBUG, anywhere."""

from __future__ import annotations

import http.client

import anthropic
import openai
import pytest

from okap_server.context import Vault
from okap_server.proxy.models import RequestLog
from okap_server.settings import Settings
from tests.server.proxy.records import wait_for_logs
from tests.server.proxy.test_sdks import anthropic_client, google_client, openai_client
from tests.support.fake_upstream import BreakStream, FakeUpstream, Respond
from tests.support.grants import FAKE_KEYS, entry, make_grant, revoke

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """With proxy calls in the access log too, so its redaction is what is tested."""
    return settings.model_copy(update={"proxy_access_log": True})


def test_no_key_or_token_in_logs_responses_or_audit(
    vault: Vault,
    live_url: str,
    fake_upstream: FakeUpstream,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    grant = make_grant(
        vault, entry("openai", models=["gpt-4o-mini"]), entry("anthropic"), entry("google")
    )
    answers: list[str] = []
    oa = openai_client(live_url, grant.token)
    answers.append(oa.chat.completions.create(model="gpt-4o-mini", messages=HI).to_json())
    answers.append(
        str(list(oa.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)))
    )
    with pytest.raises(openai.PermissionDeniedError) as denied:
        oa.chat.completions.create(model="gpt-4o", messages=HI)
    answers.append(repr(denied.value.body))
    # An upstream that quotes the key back in its error is scrubbed.
    leaky = {
        "error": {
            "message": f"Incorrect API key provided: {FAKE_KEYS['openai']}",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    fake_upstream.script("openai", Respond(401, body=leaky))
    with pytest.raises(openai.AuthenticationError) as bad_key:
        oa.chat.completions.create(model="gpt-4o-mini", messages=HI)
    answers.append(repr(bad_key.value.body) + bad_key.value.response.text)
    fake_upstream.script("anthropic", BreakStream(after_events=2))
    with (
        pytest.raises(Exception),
        anthropic_client(live_url, grant.token).messages.stream(
            model="claude-haiku-4-5", max_tokens=10, messages=HI
        ) as stream,
    ):
        answers.extend(stream.text_stream)
    gemini = google_client(live_url, grant.token)
    answers.append(str(gemini.models.generate_content(model="gemini-2.0-flash", contents="hi")))
    # The token in the URL, as older Gemini clients send it (stdlib client: it logs nothing).
    conn = http.client.HTTPConnection(live_url.removeprefix("http://"), timeout=10)
    conn.request(
        "POST",
        f"/v1/google/v1beta/models/gemini-2.0-flash:generateContent?key={grant.token}",
        body=b'{"contents": []}',
        headers={"content-type": "application/json"},
    )
    query_key = conn.getresponse()
    answers.append(query_key.read().decode() + repr(query_key.getheaders()))
    assert query_key.status == 200
    conn.close()
    revoke(vault, grant.grant_id)
    with pytest.raises(anthropic.AuthenticationError) as revoked:
        anthropic_client(live_url, grant.token).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HI
        )
    answers.append(str(revoked.value))
    rows = wait_for_logs(vault, 7)

    logged = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''} {record.args!r}"
        for record in debug_logs.records
    )
    assert "HTTP Request" in logged  # httpx's DEBUG/INFO lines were captured
    assert "key=[redacted]" in logged  # the vault's access log line, rewritten
    audit = "\n".join(repr(row.model_dump()) for row in rows)
    seen = "\n".join(answers) + logged + audit
    for secret in [grant.token, *FAKE_KEYS.values()]:
        assert secret not in seen
    assert "[redacted]" in answers[3]
    assert all(isinstance(row, RequestLog) for row in rows)
