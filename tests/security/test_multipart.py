"""Multipart bodies (images, audio, files): the vault reads a form exactly as the upstream
will, or refuses it, and forwards only the form it read. Black-box over real HTTP, asserted
on what the fake upstream (Starlette, i.e. python-multipart) received."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from okap_server.context import Vault
from okap_server.settings import Settings
from tests.security.conftest import sqlite_only
from tests.server.proxy.records import wait_for_logs
from tests.server.proxy.test_sdks import openai_client
from tests.support.fake_upstream import FakeUpstream
from tests.support.grants import entry, make_grant
from tests.support.process import server_env, vault_process

CHEAP, DEAR = "gpt-image-1-mini", "gpt-image-1"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
MAX_BODY = 8 * 1024 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"proxy_max_body_bytes": MAX_BODY})


def part(name: str, value: bytes, *extra: str) -> bytes:
    head = f'Content-Disposition: form-data; name="{name}"'.encode()
    return b"\r\n".join([head, *(h.encode() for h in extra), b"", value])


def form(*parts: bytes, boundary: bytes = b"b0undary") -> bytes:
    return b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts) + (
        b"--" + boundary + b"--\r\n"
    )


def post_form(
    live_url: str, token: str, body: bytes, *, boundary: str = "b0undary", **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{live_url}/v1/openai/images/edits",
        content=body,
        headers={
            "authorization": f"Bearer {token}",
            "content-type": f"multipart/form-data; boundary={boundary}",
            **headers,
        },
        timeout=30,
    )


IMAGE = (
    b'Content-Disposition: form-data; name="image"; filename="a.png"\r\n'
    b"Content-Type: image/png\r\n\r\n" + PNG
)


@sqlite_only
def test_a_second_model_in_the_form_cannot_buy_a_dearer_model(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    """The attack run's payload: ``model=gpt-image-1`` first, then a field holding a blank
    line and ``gpt-image-1-mini``, which a greedy regex took for the model."""
    grant = make_grant(vault, entry("openai", models=[CHEAP], capabilities=["images"]))
    smuggled = form(part("model", DEAR.encode()), part("prompt", b"a cat\r\n\r\n" + CHEAP.encode()))
    refused = post_form(live_url, grant.token, smuggled)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "model_not_allowed"
    assert DEAR in refused.json()["error"]["message"]
    # Two model fields, in either order, are ambiguous: which one an upstream takes is its own
    # choice. Refused, whatever the grant allows.
    for first, second in ((DEAR, CHEAP), (CHEAP, DEAR), (CHEAP, CHEAP)):
        twice = form(part("model", first.encode()), IMAGE, part("model", second.encode()))
        answer = post_form(live_url, grant.token, twice)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_multipart"
    assert fake_upstream.received == []
    logs = wait_for_logs(vault, 4)
    assert logs[0].model == DEAR and logs[0].error_type == "model_not_allowed"

    # The honest request of the same shape goes through, and the upstream reads what the
    # vault checked: one model, the image's bytes untouched.
    honest = form(part("model", CHEAP.encode()), part("prompt", b"a cat\r\n\r\nsitting"), IMAGE)
    assert post_form(live_url, grant.token, honest).status_code == 200
    (received,) = fake_upstream.received
    assert received.form is not None
    assert [(n, v) for n, v in received.form if n == "model"] == [("model", CHEAP)]
    assert received.fields["prompt"] == "a cat\r\n\r\nsitting"
    assert ("image", ("a.png", PNG)) in received.form


def test_the_sdks_multipart_calls_go_through_as_they_were_checked(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(
        vault,
        entry("openai", models=[CHEAP, "gpt-4o-mini-transcribe"], capabilities=["images", "audio"]),
    )
    client = openai_client(live_url, grant.token)
    edited = client.images.edit(
        model=CHEAP,
        image=[("a.png", PNG, "image/png"), ("b.png", PNG[:99], "image/png")],
        prompt="a hat",
        n=2,
    )
    assert edited.data is not None and len(edited.data) == 2
    heard = client.audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=("talk.mp3", io.BytesIO(b"ID3 fake audio"))
    )
    assert heard.text == "Hello from the fake upstream."
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.images.edit(model=DEAR, image=("a.png", PNG, "image/png"), prompt="a hat")
    assert refused.value.code == "model_not_allowed"

    images, audio = fake_upstream.requests_for("openai")
    assert images.form is not None and audio.form is not None
    assert images.fields == {"model": CHEAP, "prompt": "a hat", "n": "2"}
    assert [v for n, v in images.form if n == "image[]"] == [("a.png", PNG), ("b.png", PNG[:99])]
    assert audio.fields["model"] == "gpt-4o-mini-transcribe"
    assert ("file", ("talk.mp3", b"ID3 fake audio")) in audio.form
    logs = wait_for_logs(vault, 3)
    assert [(log.model, log.status) for log in logs] == [
        (CHEAP, 200),
        ("gpt-4o-mini-transcribe", 200),
        (DEAR, 403),
    ]
    assert logs[0].input_tokens == 12  # the usage the fake reported was read


MALFORMED: list[tuple[str, bytes, str]] = [
    ("no boundary parameter", form(part("model", b"m")), "multipart/form-data"),
    (
        "two boundary parameters",
        form(part("model", b"m")),
        "multipart/form-data; boundary=b0undary; boundary=other",
    ),
    ("a boundary over 70 characters", form(part("model", b"m"), boundary=b"b" * 71), ""),
    ("a boundary that is not the body's", form(part("model", b"m"), boundary=b"other"), ""),
    ("a preamble", b"preamble\r\n" + form(part("model", b"m")), ""),
    ("no final boundary", form(part("model", b"m"))[:-12], ""),
    (
        "transport padding after a delimiter",
        b"--b0undary  \r\n" + part("model", b"m") + b"\r\n--b0undary--",
        "",
    ),
    (
        "the boundary inside a part",
        form(part("model", b"m"), part("prompt", b"x\r\n--b0undaryX\r\ny")),
        "",
    ),
    ("a part without a name", form(b"Content-Disposition: form-data\r\n\r\nm"), ""),
    ("a part with an empty name", form(part("", b"m")), ""),
    ("a part without Content-Disposition", form(b"Content-Type: text/plain\r\n\r\nm"), ""),
    (
        "a disposition other than form-data",
        form(part("model", b"m").replace(b"form-data", b"attachment")),
        "",
    ),
    (
        "two names",
        form(part("model", b"m").replace(b'name="model"', b'name="x"; name="model"')),
        "",
    ),
    ("name* (RFC 5987)", form(part("x", b"m").replace(b'name="x"', b"name*=UTF-8''model")), ""),
    (
        "filename*",
        form(
            part("image", PNG).replace(b'name="image"', b"name=\"image\"; filename*=UTF-8''a.png")
        ),
        "",
    ),
    ("a backslash in a quoted name", form(part("mo\\del", b"m")), ""),
    (
        "two Content-Disposition headers",
        form(part("model", b"m", 'Content-Disposition: form-data; name="x"')),
        "",
    ),
    (
        "base64 Content-Transfer-Encoding",
        form(part("model", b"Z3B0LWltYWdlLTE=", "Content-Transfer-Encoding: base64")),
        "",
    ),
    (
        "quoted-printable",
        form(part("model", b"gpt=2Dimage", "Content-Transfer-Encoding: quoted-printable")),
        "",
    ),
    ("a model that is not UTF-8", form(part("model", b"gpt-image-1-mini\xff")), ""),
    (
        "a model in UTF-16",
        form(part("model", CHEAP.encode("utf-16"), "Content-Type: text/plain; charset=utf-16")),
        "",
    ),
    (
        "a model sent as a file",
        form(part("model", b"m").replace(b'name="model"', b'name="model"; filename="m.txt"')),
        "",
    ),
    (
        "a nested multipart part",
        form(part("image", b"--x\r\n\r\nq\r\n--x--", "Content-Type: multipart/mixed; boundary=x")),
        "",
    ),
    ("a _charset_ field", form(part("_charset_", b"utf-16"), part("model", b"m")), ""),
    ("n that is not a number", form(part("model", CHEAP.encode()), part("n", b"2e3")), ""),
    ("a part's headers over 2 KiB", form(part("model", b"m", "X-Pad: " + "p" * 3000)), ""),
    ("too many parts", form(*[part("image[]", b"x") for _ in range(65)]), ""),
]


@sqlite_only
def test_a_form_two_readers_could_read_two_ways_is_refused(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai", capabilities=["images"]))
    wrong: list[str] = []
    for name, body, content_type in MALFORMED:
        answer = httpx.post(
            f"{live_url}/v1/openai/images/edits",
            content=body,
            headers={
                "authorization": f"Bearer {grant.token}",
                "content-type": content_type or "multipart/form-data; boundary=b0undary",
            },
        )
        error = answer.json().get("error") or {}
        if answer.status_code != 400 or error.get("code") != "invalid_multipart":
            wrong.append(f"{name}: {answer.status_code} {answer.text[:200]}")
        else:
            assert error["type"] == "invalid_multipart" and error["message"]
    assert wrong == []
    assert fake_upstream.received == []


@sqlite_only
def test_framing_the_upstream_could_read_otherwise_is_refused(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    """Two Content-Types (a JSON body that is also a form with a preamble, for a reader
    that takes the first header), or a compressed body the vault would not read."""
    grant = make_grant(vault, entry("openai", models=["gpt-4o-mini"]))
    url = f"{live_url}/v1/openai/chat/completions"
    both = (
        b'{"model":"gpt-4o-mini","messages":[],"x":"\r\n--b\r\nContent-Disposition: form-data; '
        b'name=\\"model\\"\r\n\r\ngpt-4o\r\n--b--"}'
    )
    raw = [
        (b"authorization", f"Bearer {grant.token}".encode()),
        (b"content-type", b"multipart/form-data; boundary=b"),
        (b"content-type", b"application/json"),
    ]
    answer = httpx.post(url, content=both, headers=raw)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "ambiguous_body"
    gzipped = httpx.post(
        url,
        content=b"\x1f\x8b compressed",
        headers={
            "authorization": f"Bearer {grant.token}",
            "content-type": "application/json",
            "content-encoding": "gzip",
        },
    )
    assert gzipped.status_code == 400 and gzipped.json()["error"]["code"] == "ambiguous_body"
    # In the provider's own shape, for every family.
    files = make_grant(vault, entry("anthropic", capabilities=["files"]))
    malformed = httpx.post(
        f"{live_url}/v1/anthropic/v1/files",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\nf\r\n--x--",
        headers={"x-api-key": files.token, "content-type": "multipart/form-data; boundary=x"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["type"] == "error"
    assert malformed.json()["error"]["type"] == "invalid_request_error"
    assert fake_upstream.received == []


def _issue_payload() -> bytes:
    """The attack run's 224 KB body that froze ``/healthz`` for 10.5 s."""
    return b'name="model"\r\n' * (224 * 1024 // 14)


def _hostile_bodies() -> list[tuple[str, bytes]]:
    """Bodies of the vault's maximum size that make a naive parser work hard."""
    start = b'--b0undary\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\n'
    end = b"\r\n--b0undary--\r\n"
    fill = MAX_BODY - len(start) - len(end)
    pad = b"\r\nX-Pad:" + b" " * 1900 + b"v"
    many = [b'Content-Disposition: form-data; name="image[]"' + pad + b"\r\n\r\nx"] * 64
    return [
        ("the attack run's body", _issue_payload()),
        ("the same, after a real start", start + b'name="model"\r\n' * (fill // 14) + end),
        ("carriage returns", start + b"\r" * fill + end),
        ("near delimiters", start + b"\r\n--b0undar" * (fill // 12) + end),
        ("false delimiters", start + b"\r\n--b0undaryX" * (fill // 13) + end),
        ("header padding in every part", form(*many)),
        ("a model line per part", form(*[part("model", b"\r\n" * 8) for _ in range(64)])),
    ]


@sqlite_only
def test_hostile_multipart_bodies_never_stall_the_vault(
    settings: Settings, vault: Vault, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """Nothing CPU-bound over a body runs unbounded on the event loop: while each hostile
    body of the maximum size is read, ``/healthz`` keeps answering within half a second.
    The vault runs as its own process, so the test's own threads cannot hide a stall."""
    grant = make_grant(vault, entry("openai", models=[CHEAP], capabilities=["images"]))
    env = {
        **server_env(settings, fake_upstream),
        "OKAP_PROXY_MAX_BODY_BYTES": str(MAX_BODY),
    }
    url = f"http://127.0.0.1:{settings.port}"
    with (
        vault_process(env, settings.port, tmp_path / "serve.log"),
        httpx.Client(base_url=url, timeout=2) as probe,
    ):
        for name, body in _hostile_bodies():
            statuses: list[int] = []
            sender = threading.Thread(
                target=lambda b=body: statuses.append(post_form(url, grant.token, b).status_code),
                daemon=True,
            )
            sender.start()
            slowest = 0.0
            while sender.is_alive():
                began = time.monotonic()
                with contextlib.suppress(httpx.TimeoutException):
                    assert probe.get("/healthz").status_code == 200
                slowest = max(slowest, time.monotonic() - began)
                assert slowest < 0.5, f"/healthz took {slowest:.2f}s during {name}"
                time.sleep(0.01)
            sender.join()
            assert len(statuses) == 1 and 400 <= statuses[0] < 500, (name, statuses)
    assert fake_upstream.received == []
