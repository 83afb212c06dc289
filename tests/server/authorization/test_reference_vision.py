"""Issue 19's done-when: the reference ``okap`` 0.1.2 SDK asking for ``["chat", "vision"]``
gets a token, and the token works for a chat message carrying an image.

The published 0.1.2 cannot name ``vision`` through ``request_access``: its ``Capabilities``
enum (chat, completions, embeddings, images, audio, moderation) refuses the word before
anything is sent, though the OKAP reference's SPEC §3.4 lists it. So the first test pins
that, and the second sends exactly the request 0.1.2 sends (its own ``AccessRequest``
model, dumped as ``request_access`` dumps it, POSTed by its own HTTP client to
``/okap/request``) with ``vision`` in it, and reads the answer with the SDK's own
``AccessResponse``, which must parse: the vault answers in the SDK's vocabulary."""

from __future__ import annotations

import threading
import warnings
from urllib.parse import urljoin

import openai
import pytest
from okap import OkapClient
from okap.models import AccessRequest, AccessResponse, Capabilities, Provider

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.person import Person


@pytest.fixture
def settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    return settings.model_copy(update={"upstreams": fake_upstream.upstreams()})


def test_okap_0_1_2_refuses_to_name_vision_itself(live_url: str) -> None:
    with OkapClient(live_url, app_name="Photos") as client, pytest.raises(ValueError):
        client.request_access("openai", capabilities=["chat", "vision"])


def test_the_reference_request_for_chat_and_vision_gets_a_working_token(
    vault: Vault, live_url: str, person: Person, openai_key: str, fake_upstream: FakeUpstream
) -> None:
    person.sign_in()
    helper = threading.Thread(target=lambda: person.approve_next_pending(timeout=5), daemon=True)
    helper.start()
    asked = AccessRequest.model_construct(  # the SDK's model; only its enum check skipped
        okap="1.0",
        provider=Provider.OPENAI,
        models=["gpt-4o-mini"],
        capabilities=[Capabilities.CHAT, "vision"],
        limits=None,
        expires=None,
        reason="Describe my photos",
        app_name="Photos",
        app_url="https://photos.example",
        redirect_uri=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic notes the str where it expects the enum
        body = asked.model_dump(exclude_none=True, mode="json")
    assert body["capabilities"] == ["chat", "vision"]
    with OkapClient(live_url, app_name="Photos") as client:
        answer = client._client.post(  # the SDK's own client, as request_access posts
            urljoin(client.vault_url, "/okap/request"),
            json=body,
            headers={"Content-Type": "application/json"},
        )
    helper.join(5)
    assert answer.status_code == 200, answer.text
    parsed = AccessResponse.model_validate(answer.json())  # as request_access reads it
    assert parsed.approved and parsed.token is not None
    token = parsed.token
    assert token.token.startswith("okap_") and token.base_url == f"{live_url}/v1/openai"
    assert token.capabilities == [Capabilities.CHAT]  # vision is chat with an image

    app = openai.OpenAI(base_url=token.base_url, api_key=token.token, max_retries=0)
    picture = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    said = app.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": [{"type": "text", "text": "what is it?"}, picture]}],
    )
    assert said.choices[0].message.content == "Hello from the fake upstream."
    sent = fake_upstream.requests_for("openai")[-1].json
    assert sent["messages"][0]["content"][1]["type"] == "image_url"
    usage = person.client.get(
        f"{live_url}/okap/usage", headers={"Authorization": f"Bearer {token.token}"}
    )
    assert usage.status_code == 200
    granted = usage.json()["authorization_details"][0]["capabilities"]
    assert granted == ["chat", "vision"]  # the grant keeps the words the app asked for
