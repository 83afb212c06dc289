"""Every way a body can name a stored object is checked, not just the usual spelling:
Gemini fields under both names protobuf's JSON reader takes, a Gemini batch's input file,
a Responses API ``item_reference``, an earlier audio answer, and a body sent under a
Content-Type that is not JSON. Real SDKs and raw HTTP, asserted on what the fake upstream
received; ownership is stored, so on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from okap_server.context import Vault
from tests.security.conftest import sqlite_only
from tests.security.test_stored_objects import refused
from tests.server.proxy.test_sdks import openai_client
from tests.support.fake_upstream import FakeUpstream, Respond
from tests.support.grants import entry, make_grant

GEMINI = ["chat", "files", "batch"]
FLASH = "google/v1beta/models/gemini-2.5-flash"
UPLOAD = {"file": ("a.pdf", b"%PDF-1.4", "application/pdf")}


def call(live_url: str, token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"x-goog-api-key": token, "authorization": f"Bearer {token}", **kwargs.pop("h", {})}
    return httpx.request(method, f"{live_url}/v1/{path}", headers=headers, timeout=15, **kwargs)


def gemini_bodies(file_name: str, cache: str) -> list[tuple[str, dict[str, Any]]]:
    """(method, body) naming the file or the cache, camelCase and snake_case."""
    uri = f"https://generativelanguage.googleapis.com/v1beta/{file_name}"
    text = {"parts": [{"text": "hi"}]}
    return [
        ("generateContent", {"contents": [{"parts": [{"fileData": {"fileUri": uri}}]}]}),
        ("generateContent", {"contents": [{"parts": [{"file_data": {"file_uri": uri}}]}]}),
        ("generateContent", {"contents": [text], "cachedContent": cache}),
        ("generateContent", {"contents": [text], "cached_content": cache}),
        ("batchGenerateContent", {"batch": {"inputConfig": {"fileName": file_name}}}),
        ("batchGenerateContent", {"batch": {"input_config": {"file_name": file_name}}}),
    ]


def test_gemini_references_are_checked_under_every_spelling(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    mine = make_grant(vault, entry("google", capabilities=GEMINI)).token
    theirs = make_grant(vault, entry("google", capabilities=GEMINI), client_name="Other").token
    file_name = call(live_url, mine, "POST", "google/upload/v1beta/files", files=UPLOAD).json()
    cache = call(
        live_url, mine, "POST", "google/v1beta/cachedContents", json={"model": "gemini-2.5-flash"}
    ).json()["name"]
    for method, body in gemini_bodies(file_name["file"]["name"], cache):
        before = len(fake_upstream.received)
        answer = call(live_url, mine, "POST", f"{FLASH}:{method}", json=body)
        assert "x-okap-error" not in answer.headers, answer.text  # the fake has no batches
        assert len(fake_upstream.received) == before + 1
        before = len(fake_upstream.received)
        answer = call(live_url, theirs, "POST", f"{FLASH}:{method}", json=body)
        assert answer.status_code == 403, (body, answer.text)
        assert answer.json()["error"]["details"][0]["reason"] == "object_not_owned"
        assert len(fake_upstream.received) == before
    # File Search stores: no capability creates one, so naming any is refused.
    stores = ["fileSearchStores/x"]
    for tools in (
        {"fileSearch": {"fileSearchStoreNames": stores}},
        {"file_search": {"file_search_store_names": stores}},
    ):
        body = {"contents": [{"parts": [{"text": "hi"}]}], "tools": [tools]}
        answer = call(live_url, mine, "POST", f"{FLASH}:generateContent", json=body)
        assert answer.status_code == 403 and "object_not_owned" in answer.text


def test_response_items_and_audio_answers_are_their_grants_own(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    """An ``item_reference`` names an output item of a stored response: usable by the
    grant whose response produced it (read from the answer, or from a stream's
    ``response.completed``). An assistant message's ``audio.id`` names an earlier audio
    answer: usable by the grant it was given to."""
    mine = openai_client(live_url, make_grant(vault, entry("openai")).token)
    theirs = openai_client(live_url, make_grant(vault, entry("openai"), client_name="O").token)
    response = mine.responses.create(model="gpt-4o-mini", input="hi")
    item = response.output[0].id
    again: list[Any] = [{"type": "item_reference", "id": item}, {"role": "user", "content": "and?"}]
    mine.responses.create(model="gpt-4o-mini", input=again)
    message = refused(
        fake_upstream,
        "object_not_owned",
        lambda: theirs.responses.create(model="gpt-4o-mini", input=again),
    )
    assert item in message
    # A reasoning item without its encrypted content is read from the store by its id.
    thought: Any = [{"type": "reasoning", "id": "rs_someone_elses", "summary": []}]
    refused(
        fake_upstream,
        "object_not_owned",
        lambda: theirs.responses.create(model="gpt-4o-mini", input=thought),
    )
    list(theirs.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    theirs.responses.create(model="gpt-4o-mini", input=again)  # its own stream made it

    audio = {"id": "audio_abc123", "data": "AAAA", "transcript": "hi", "expires_at": 1}
    fake_upstream.script("openai", Respond(200, body=audio_answer(audio)))
    mine.chat.completions.create(
        model="gpt-4o-mini-audio-preview",
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "wav"},
        messages=[{"role": "user", "content": "say hi"}],
    )
    turn: Any = [
        {"role": "user", "content": "say hi"},
        {"role": "assistant", "audio": {"id": "audio_abc123"}},
        {"role": "user", "content": "again"},
    ]
    mine.chat.completions.create(model="gpt-4o-mini", messages=turn)
    refused(
        fake_upstream,
        "object_not_owned",
        lambda: theirs.chat.completions.create(model="gpt-4o-mini", messages=turn),
    )


def audio_answer(audio: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-audio",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-audio-preview",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "audio": audio},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }


@sqlite_only
def test_a_body_is_read_as_json_whatever_its_content_type(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    """An upstream may read any body as JSON, so the vault reads it so too: one it cannot
    read is refused (400, the provider's shape) unless the endpoint takes raw bytes (a
    Gemini media upload); one it can read has its references checked."""
    token = make_grant(vault, entry("openai"), entry("google", capabilities=GEMINI)).token
    naming = b' {"model":"gpt-4o-mini","previous_response_id":"resp_other","input":"hi"}'
    for content_type in ("text/plain", "application/octet-stream", "application/x-anything"):
        for path in ("openai/responses/input_tokens", "openai/responses"):
            h = {"content-type": content_type}
            answer = call(live_url, token, "POST", path, content=naming, h=h)
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"]["code"] == "object_not_owned"
            for garbage in (b"\xef\xbb\xbf" + naming, b"model=gpt-4o-mini", b"\x00\x01"):
                answer = call(live_url, token, "POST", path, content=garbage, h=h)
                assert answer.status_code == 400, answer.text
                assert answer.json()["error"]["code"] == "invalid_json"
    answer = call(
        live_url, token, "POST", f"{FLASH}:countTokens", content=b"hi", h={"content-type": "x/y"}
    )
    assert answer.status_code == 400 and answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fake_upstream.received == []
    # A media upload sends the file's bytes as they are.
    media = {"content-type": "application/octet-stream"}
    upload = call(
        live_url, token, "POST", "google/upload/v1beta/files", content=b"\x00{raw", h=media
    )
    assert upload.status_code == 200, upload.text
    assert fake_upstream.received[-1].body == b"\x00{raw"


def test_code_containers_are_their_grants_own(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    """A code container holds the files of the app whose code ran in it: reused only by
    the grant whose answer named it (OpenAI ``container_id`` of an output item, Anthropic
    ``container.id``)."""
    mine = make_grant(vault, entry("openai"), entry("anthropic")).token
    theirs = make_grant(vault, entry("openai"), entry("anthropic"), client_name="O").token
    ran = {"type": "code_interpreter_call", "id": "ci_1", "container_id": "cntr_mine"}
    made = {"id": "resp_c", "object": "response", "status": "completed", "output": [ran]}
    fake_upstream.script("openai", Respond(200, body={**made, "model": "gpt-4o-mini"}))
    auto = {"type": "code_interpreter", "container": {"type": "auto"}}
    body: dict[str, Any] = {"model": "gpt-4o-mini", "input": "run", "tools": [auto]}
    assert call(live_url, mine, "POST", "openai/responses", json=body).status_code == 200
    reuse = {**body, "tools": [{"type": "code_interpreter", "container": "cntr_mine"}]}
    answer = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    fake_upstream.script(
        "anthropic", Respond(200, body={**answer, "container": {"id": "container_mine"}})
    )
    hi = [{"role": "user", "content": "hi"}]
    message = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": hi}
    assert call(live_url, mine, "POST", "anthropic/v1/messages", json=message).status_code == 200
    again = {**message, "container": "container_mine"}
    for path, reused in (("openai/responses", reuse), ("anthropic/v1/messages", again)):
        headers = {"x-api-key": mine}
        assert call(live_url, mine, "POST", path, json=reused, h=headers).status_code == 200
        before = len(fake_upstream.received)
        refusal = call(live_url, theirs, "POST", path, json=reused, h={"x-api-key": theirs})
        assert refusal.status_code == 403 and "object_not_owned" in refusal.text
        assert len(fake_upstream.received) == before
