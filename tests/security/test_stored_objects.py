"""Cross-app reads on a shared key: a provider keeps one store of objects per organisation
(stored responses and completions, files, batches, caches), and every app granted the key
shares it. A grant lists none of it, and uses by id (in the path or in a body) only what it
created. Black-box over real HTTP with the real SDKs, asserted on what the fake upstream
received."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from okap_server.app import create_app
from okap_server.context import Vault
from tests.security.conftest import sqlite_only
from tests.server.proxy.test_sdks import openai_client
from tests.support.fake_upstream import FILE_CONTENT, FakeUpstream
from tests.support.grants import entry, make_grant
from tests.support.live import free_port, serve_app

EVERYTHING = ["chat", "files", "batch"]
HI = [{"role": "user", "content": "hi"}]


def refused(fake: FakeUpstream, code: str, call: Callable[[], Any]) -> str:
    """Run ``call``; it must raise the SDK's PermissionDeniedError with ``code`` and reach
    nothing upstream. The error's message, for the test to read."""
    before = len(fake.received)
    with pytest.raises(openai.PermissionDeniedError) as raised:
        call()
    assert raised.value.code == code, raised.value.message
    assert len(fake.received) == before, fake.received[before:]
    return raised.value.message


def test_a_grant_uses_only_the_stored_objects_it_created(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    mine = openai_client(
        live_url, make_grant(vault, entry("openai", capabilities=EVERYTHING)).token
    )
    theirs = openai_client(
        live_url,
        make_grant(vault, entry("openai", capabilities=EVERYTHING), client_name="Other").token,
    )
    # Responses are stored unless asked not to: the creator reads, lists items, continues
    # and deletes its own.
    response = mine.responses.create(model="gpt-4o-mini", input="hi")
    assert mine.responses.retrieve(response.id).id == response.id
    mine.responses.input_items.list(response.id)
    mine.responses.create(model="gpt-4o-mini", input="more", previous_response_id=response.id)
    # Another app on the same key does none of it.
    message = refused(
        fake_upstream, "object_not_owned", lambda: theirs.responses.retrieve(response.id)
    )
    assert response.id in message and "other apps" in message
    refused(fake_upstream, "object_not_owned", lambda: theirs.responses.delete(response.id))
    refused(
        fake_upstream,
        "object_not_owned",
        lambda: theirs.responses.input_items.list(response.id),
    )
    refused(
        fake_upstream,
        "object_not_owned",
        lambda: theirs.responses.create(
            model="gpt-4o-mini", input="and?", previous_response_id=response.id
        ),
    )
    refused(
        fake_upstream,
        "object_not_owned",
        lambda: theirs.responses.create(
            model="gpt-4o-mini", input="hi", conversation={"id": "conv_someone"}
        ),
    )
    mine.responses.delete(response.id)
    # A streamed response is owned as well (its id is read from ``response.created``).
    events = list(mine.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    streamed = events[0].response  # type: ignore[union-attr]
    mine.responses.retrieve(streamed.id)
    refused(fake_upstream, "object_not_owned", lambda: theirs.responses.retrieve(streamed.id))
    # A key spelt with a JSON escape is the same key to the upstream.
    escaped = '{"model":"gpt-4o-mini","input":"hi","previous\\u005fresponse_id":"%s"}'
    before = len(fake_upstream.received)
    answer = httpx.post(
        f"{live_url}/v1/openai/responses",
        content=escaped % response.id,
        headers={"authorization": f"Bearer {theirs.api_key}", "content-type": "application/json"},
    )
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "object_not_owned"
    assert len(fake_upstream.received) == before

    # Chat completions are stored only when asked; the organisation's list is no app's.
    stored = mine.chat.completions.create(model="gpt-4o-mini", messages=HI, store=True)
    mine.chat.completions.retrieve(stored.id)
    refused(fake_upstream, "object_not_owned", lambda: theirs.chat.completions.retrieve(stored.id))
    refused(fake_upstream, "object_not_owned", lambda: theirs.chat.completions.delete(stored.id))
    listing = refused(fake_upstream, "listing_not_allowed", lambda: mine.chat.completions.list())
    assert "shared with other apps" in listing

    # Files: no listing; a file is read, named in a prompt or batched only by its creator,
    # and a batch's output file belongs to whoever owns the batch.
    made = mine.files.create(file=("in.jsonl", b'{"custom_id": "1"}\n'), purpose="batch")
    assert mine.files.retrieve(made.id).id == made.id
    assert mine.files.content(made.id).read() == FILE_CONTENT
    refused(fake_upstream, "listing_not_allowed", lambda: mine.files.list())
    refused(fake_upstream, "listing_not_allowed", lambda: theirs.files.list())
    refused(fake_upstream, "object_not_owned", lambda: theirs.files.retrieve(made.id))
    refused(fake_upstream, "object_not_owned", lambda: theirs.files.content(made.id))
    refused(fake_upstream, "object_not_owned", lambda: theirs.files.delete(made.id))
    with_file = [{"role": "user", "content": [{"type": "file", "file": {"file_id": made.id}}]}]
    mine.chat.completions.create(model="gpt-4o-mini", messages=with_file)  # type: ignore[arg-type]
    refused(
        fake_upstream,
        "object_not_owned",
        lambda: theirs.chat.completions.create(model="gpt-4o-mini", messages=with_file),  # type: ignore[arg-type]
    )
    batch = mine.batches.create(
        input_file_id=made.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    refused(
        fake_upstream,
        "object_not_owned",
        lambda: theirs.batches.create(
            input_file_id=made.id, endpoint="/v1/chat/completions", completion_window="24h"
        ),
    )
    done = mine.batches.retrieve(batch.id)
    assert done.output_file_id
    assert mine.files.content(done.output_file_id).read() == FILE_CONTENT
    refused(fake_upstream, "object_not_owned", lambda: theirs.batches.retrieve(batch.id))
    refused(fake_upstream, "object_not_owned", lambda: theirs.files.content(done.output_file_id))
    refused(fake_upstream, "listing_not_allowed", lambda: mine.batches.list())
    # What reached the upstream: only the creator's own calls.
    paths = [f"{r.method} {r.path.removeprefix('/openai/v1/')}" for r in fake_upstream.received]
    assert paths == [
        "POST responses",
        f"GET responses/{response.id}",
        f"GET responses/{response.id}/input_items",
        "POST responses",
        f"DELETE responses/{response.id}",
        "POST responses",
        f"GET responses/{streamed.id}",
        "POST chat/completions",
        f"GET chat/completions/{stored.id}",
        "POST files",
        f"GET files/{made.id}",
        f"GET files/{made.id}/content",
        "POST chat/completions",
        "POST batches",
        f"GET batches/{batch.id}",
        f"GET files/{done.output_file_id}/content",
    ]


@sqlite_only
def test_ownership_is_stored_for_every_worker_and_replica(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    """A second server on the same database (another worker, another replica, or this one
    after a restart) knows what the first one's grant created, even a moment after."""
    token = make_grant(vault, entry("openai", capabilities=EVERYTHING)).token
    made = openai_client(live_url, token).files.create(file=("a.jsonl", b"{}\n"), purpose="batch")
    with serve_app(create_app(vault), free_port()) as other:
        assert openai_client(other, token).files.retrieve(made.id).id == made.id
        with pytest.raises(openai.PermissionDeniedError):
            openai_client(other, token).files.retrieve("file-never-made")


@sqlite_only
def test_anthropic_and_gemini_stores_are_per_grant_too(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    capabilities = ["chat", "files", "batch"]
    mine = make_grant(
        vault,
        entry("anthropic", capabilities=capabilities),
        entry("google", capabilities=capabilities),
    )
    theirs = make_grant(
        vault,
        entry("anthropic", capabilities=capabilities),
        entry("google", capabilities=capabilities),
        client_name="Other",
    )

    def call(grant_token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"x-api-key": grant_token, "x-goog-api-key": grant_token}
        return httpx.request(method, f"{live_url}/v1/{path}", headers=headers, timeout=15, **kwargs)

    def forbidden(answer: httpx.Response, code: str) -> None:
        assert answer.status_code == 403, answer.text
        assert code in answer.text

    # Anthropic: Files and Message Batches.
    upload = {"file": ("a.pdf", b"%PDF-1.4", "application/pdf")}
    file_id = call(mine.token, "POST", "anthropic/v1/files", files=upload).json()["id"]
    batch_id = call(
        mine.token, "POST", "anthropic/v1/messages/batches", json={"requests": []}
    ).json()["id"]
    for path in (
        f"v1/files/{file_id}",
        f"v1/messages/batches/{batch_id}",
        f"v1/messages/batches/{batch_id}/results",
    ):
        assert call(mine.token, "GET", f"anthropic/{path}").status_code == 200
        answer = call(theirs.token, "GET", f"anthropic/{path}")
        forbidden(answer, "object_not_owned")
        assert answer.json()["error"]["type"] == "permission_error"
    forbidden(call(theirs.token, "DELETE", f"anthropic/v1/files/{file_id}"), "object_not_owned")
    for path in ("v1/files", "v1/messages/batches"):
        forbidden(call(mine.token, "GET", f"anthropic/{path}"), "listing_not_allowed")
    document = {"type": "document", "source": {"type": "file", "file_id": file_id}}
    message = {
        "model": "claude-haiku-4-5",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": [document]}],
    }
    assert call(mine.token, "POST", "anthropic/v1/messages", json=message).status_code == 200
    forbidden(call(theirs.token, "POST", "anthropic/v1/messages", json=message), "object_not_owned")

    # Gemini: Files and context caches, by name in the path and in a prompt.
    cache = call(
        mine.token,
        "POST",
        "google/v1beta/cachedContents",
        json={"model": "models/gemini-2.5-flash"},
    ).json()["name"]
    gemini_file = call(mine.token, "POST", "google/upload/v1beta/files", files=upload).json()[
        "file"
    ]["name"]
    for path in (f"v1beta/{cache}", f"v1beta/{gemini_file}"):
        assert call(mine.token, "GET", f"google/{path}").status_code == 200
        answer = call(theirs.token, "GET", f"google/{path}")
        forbidden(answer, "object_not_owned")
        assert answer.json()["error"]["status"] == "PERMISSION_DENIED"
    for path in ("v1beta/files", "v1beta/cachedContents", "v1beta/batches"):
        forbidden(call(mine.token, "GET", f"google/{path}"), "listing_not_allowed")
    generate = "google/v1beta/models/gemini-2.5-flash:generateContent"
    cached = {"contents": [{"parts": [{"text": "hi"}]}], "cachedContent": cache}
    uri = f"https://generativelanguage.googleapis.com/v1beta/{gemini_file}"
    with_file = {
        "contents": [{"parts": [{"fileData": {"fileUri": uri, "mimeType": "application/pdf"}}]}]
    }
    public = {
        "contents": [{"parts": [{"fileData": {"fileUri": "https://www.youtube.com/watch?v=x"}}]}]
    }
    for body in (cached, with_file):
        assert call(mine.token, "POST", generate, json=body).status_code == 200
        forbidden(call(theirs.token, "POST", generate, json=body), "object_not_owned")
    assert call(theirs.token, "POST", generate, json=public).status_code == 200
