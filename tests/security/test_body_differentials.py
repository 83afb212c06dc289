"""The vault forwards exactly the JSON it checked: a body that two JSON readers could read
two ways (duplicate names, case or spelling variants of a name the vault reads, NaN, lone
surrogates, another encoding) is refused in the provider's own error shape, and a cap the
vault sets reaches every field the provider may read it from."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from okap_server.context import Vault
from tests.security.conftest import sqlite_only
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant

pytestmark = sqlite_only
CAPPED = {"tokens_per_request": 50, "daily_spend": 5.0}
HI = '[{"role":"user","content":"hi"}]'
CHAT = "/v1/openai/chat/completions"
GEMINI = "/v1/google/v1beta/models/gemini-2.5-flash:generateContent"


def post(
    live_url: str, path: str, token: str, body: bytes | str, content_type: str = "application/json"
) -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    headers = {"content-type": content_type, "authorization": f"Bearer {token}"}
    if "/google/" in path:
        headers["x-goog-api-key"] = headers.pop("authorization").removeprefix("Bearer ")
    if "/anthropic/" in path:
        headers["x-api-key"] = headers.pop("authorization").removeprefix("Bearer ")
    return httpx.post(f"{live_url}{path}", content=data, headers=headers, timeout=10)


def okap_code(provider: str, answer: httpx.Response) -> str:
    """The OKAP error code, read from the provider's own error shape."""
    error = answer.json()["error"]
    if provider == "google":
        assert error["status"] == "INVALID_ARGUMENT"
        return str(error["details"][0]["reason"])
    if provider == "anthropic":
        assert answer.json()["type"] == "error" and error["type"] == "invalid_request_error"
    return str(error["code"])


def chat(members: str = "") -> str:
    return f'{{"model":"gpt-4o-mini","messages":{HI}{members}}}'


PLAIN = chat()
AMBIGUOUS: list[tuple[str, str, bytes | str, str]] = [
    # Python and Node read the last max_tokens; other readers the first.
    ("openai", CHAT, chat(',"max_tokens":5,"max_tokens":900000'), "invalid_json"),
    (
        "anthropic",
        "/v1/anthropic/v1/messages",
        f'{{"model":"claude-haiku-4-5","max_tokens":5,"messages":{HI},"max_tokens":900000}}',
        "invalid_json",
    ),
    (
        "google",
        GEMINI,
        '{"contents":[{"parts":[{"text":"hi"}]}],'
        '"generationConfig":{"candidateCount":1,"candidateCount":8}}',
        "invalid_json",
    ),
    # Go's encoding/json matches names ignoring case, the Kelvin sign as a "k".
    ("openai", CHAT, chat(',"MAX_TOKENS":900000'), "invalid_parameter"),
    ("openai", CHAT, chat(',"max_to\u212aens":900000'), "invalid_parameter"),
    ("openai", CHAT, chat(',"Model":"gpt-4o"'), "invalid_parameter"),
    # protobuf's JSON reader takes both spellings of a field.
    (
        "google",
        GEMINI,
        '{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":5},'
        '"generation_config":{"maxOutputTokens":900000}}',
        "invalid_parameter",
    ),
    # Not JSON, or JSON that readers take differently.
    ("openai", CHAT, chat(',"temperature":NaN'), "invalid_json"),
    ("openai", CHAT, chat(',"top_p":1e400'), "invalid_json"),
    ("openai", CHAT, chat(',"user":"\\ud800"'), "invalid_json"),
    ("openai", CHAT, PLAIN.encode("utf-16"), "invalid_json"),
    ("openai", CHAT, b"\xef\xbb\xbf" + PLAIN.encode(), "invalid_json"),
    ("openai", CHAT, chat(',"user":"\xed\xa0\x80"').encode("latin-1"), "invalid_json"),
    # A count the vault cannot read is not one it can bound.
    ("openai", CHAT, chat(',"n":"many"'), "invalid_parameter"),
]


@pytest.mark.parametrize(
    ("provider", "path", "body", "code"),
    AMBIGUOUS,
    ids=[
        "duplicate-openai",
        "duplicate-anthropic",
        "duplicate-gemini-nested",
        "upper-case",
        "kelvin-sign",
        "model-twice-by-case",
        "gemini-both-spellings",
        "nan",
        "overflowing-number",
        "lone-surrogate",
        "utf-16",
        "byte-order-mark",
        "encoded-surrogate",
        "unreadable-n",
    ],
)
def test_a_body_readers_could_read_two_ways_is_refused(
    vault: Vault,
    live_url: str,
    fake_upstream: FakeUpstream,
    provider: str,
    path: str,
    body: bytes | str,
    code: str,
) -> None:
    grant = make_grant(vault, entry(provider, limits=CAPPED))
    answer = post(live_url, path, grant.token, body)
    assert answer.status_code == 400, answer.text
    assert okap_code(provider, answer) == code
    assert answer.headers["x-okap-error"] == code
    assert fake_upstream.received == []


def test_other_encodings_and_non_json_bodies_are_refused(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai", limits=CAPPED))
    body = f'{{"model":"gpt-4o-mini","messages":{HI},"max_tokens":900000}}'
    for content_type in ("application/json; charset=utf-16", "application/json;charset=latin1"):
        answer = post(live_url, CHAT, grant.token, body, content_type)
        assert answer.status_code == 400 and answer.headers["x-okap-error"] == "invalid_json"
    # A body a lenient upstream may take for JSON whatever its type: the vault reads it so
    # too, and its cap is the grant's; one that is not a JSON object is refused.
    answer = post(live_url, CHAT, grant.token, " " + body, "text/plain")
    assert answer.status_code == 200, answer.text
    assert sent(fake_upstream, "openai")["max_tokens"] == 50
    fake_upstream.reset()
    for text in ("\ufeff" + body, "model=gpt-4o-mini", '["not", "an", "object"]'):
        answer = post(live_url, CHAT, grant.token, text, "text/plain")
        assert answer.status_code == 400 and answer.headers["x-okap-error"] == "invalid_json"
    answer = httpx.post(
        f"{live_url}/v1/google/v1beta/models/gemini-2.5-flash:generateContent",
        content=b'{"contents":[{"parts":[{"text":"hi"}]}]}',
        headers={
            "x-goog-api-key": make_grant(vault, entry("google"), client_name="G").token,
            "content-type": "application/json",
            "x-http-method-override": "GET",
        },
    )
    assert answer.status_code == 400
    assert fake_upstream.received == []


def sent(fake: FakeUpstream, provider: str) -> Any:
    return json.loads(fake.requests_for(provider)[-1].body)


def test_a_cap_reaches_every_field_the_provider_may_read(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai", limits=CAPPED))
    both = (
        f'{{"model":"gpt-4o-mini","messages":{HI},"max_completion_tokens":5,"max_tokens":900000}}'
    )
    assert post(live_url, CHAT, grant.token, both).status_code == 200
    forwarded = sent(fake_upstream, "openai")
    assert (forwarded["max_completion_tokens"], forwarded["max_tokens"]) == (5, 50)
    # A number as a string is an integer to a lax reader (pydantic): it is read, and capped.
    assert post(live_url, CHAT, grant.token, both.replace("900000", '"900000"')).status_code == 200
    assert sent(fake_upstream, "openai")["max_tokens"] == 50

    google = make_grant(vault, entry("google", limits=CAPPED), client_name="G")
    snake = (
        '{"contents":[{"parts":[{"text":"hi"}]}],"generation_config":{"max_output_tokens":900000}}'
    )
    assert post(live_url, GEMINI, google.token, snake).status_code == 200
    forwarded = sent(fake_upstream, "google")
    assert forwarded["generation_config"] == {"max_output_tokens": 50}
    assert "generationConfig" not in forwarded


def test_tokens_per_request_caps_the_sum_of_the_answers(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai", limits=CAPPED))
    body = f'{{"model":"gpt-4o-mini","messages":{HI},"max_tokens":900000,"n":5}}'
    assert post(live_url, CHAT, grant.token, body).status_code == 200
    assert sent(fake_upstream, "openai")["max_tokens"] == 10  # 5 answers x 10 = 50
    too_many = post(live_url, CHAT, grant.token, body.replace('"n":5', '"n":"128"'))
    assert too_many.status_code == 403
    assert too_many.headers["x-okap-error"] == "tokens_per_request_exceeded"
    assert len(fake_upstream.received) == 1


def test_an_unchanged_body_is_forwarded_byte_for_byte(
    vault: Vault, live_url: str, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai", limits=CAPPED))
    body = (
        f'{{ "model" : "gpt-4o-mini", "messages" : {HI}, "max_tokens" : 20,'
        ' "user": "caf\\u00e9 \\ud83d\\ude00", "metadata": {"ID": "1", "id": "2"} }'
    )
    assert post(live_url, CHAT, grant.token, body).status_code == 200
    assert fake_upstream.requests_for("openai")[-1].body == body.encode()
