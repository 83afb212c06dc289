"""Bounded fuzzing of multipart bodies on the proxy, with hypothesis, over real HTTP.

Forms are built from the parts an attacker would play with (a second ``model``, a blank line
and a model inside another field, boundaries inside parts, ``filename*``, encodings,
charsets, nested multipart) and then mutated (cut, spliced, line endings changed, the
boundary header wrong). Whatever the body, the vault never answers 5xx, and every form it
forwards is read by two independent readers (Starlette's python-multipart, as the fake
upstream reads it, and the standard library's MIME parser) as naming exactly one model, the
one the grant allows."""

from __future__ import annotations

import email.parser
import email.policy
from collections import Counter

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from okap_server.context import Vault
from tests.security.conftest import sqlite_only
from tests.support.fake_upstream import FakeUpstream, Received
from tests.support.grants import entry, make_grant

CHEAP, DEAR = "gpt-image-1-mini", "gpt-image-1"
EXAMPLES = 400
BOUNDARIES = [b"b0undary", b"x", b"----WebKitFormBoundary7MA4YWxkTrZu0gW", b"a'()+_,-./:=?"]
FRAGMENTS = [
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b"--",
    b'name="model"\r\n',
    DEAR.encode(),
    CHEAP.encode(),
    b"\xff\xfe",
    b"\x00",
    b"Content-Disposition: form-data; name=model\r\n\r\n",
]

PLAIN_NAMES = ["prompt", "image", "image[]", "size", "user", "quality", "background", "mask"]
names = st.sampled_from(["prompt", "image", "image[]", "mask", "size"]) | st.sampled_from(
    ["model", "n", "image[]", "_charset_", "stream", "prompt"]
)
values = st.one_of(
    st.sampled_from([CHEAP, DEAR, "", "2", "true", f"{CHEAP}\r\n\r\n{DEAR}"]).map(str.encode),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=12)), max_size=5).map(
        b"".join
    ),
)
extra_headers = (
    st.just([])
    | st.just([])
    | st.lists(
        st.sampled_from(
            [
                "Content-Type: image/png",
                "Content-Type: text/plain; charset=utf-16",
                "Content-Type: multipart/mixed; boundary=x",
                "Content-Transfer-Encoding: base64",
                "Content-Transfer-Encoding: binary",
                "Content-Length: 3",
                'Content-Disposition: form-data; name="model"',
            ]
        ),
        max_size=2,
    )
)
honest = ['form-data; name="{name}"', 'form-data; name="{name}"; filename="a.png"']
dispositions = st.sampled_from(honest) | st.sampled_from(
    [
        'form-data; name="{name}"',
        "form-data; name={name}",
        'form-data; name="{name}"; filename="a.png"',
        'form-data; name="{name}"; filename=""',
        "form-data; name=\"{name}\"; filename*=UTF-8''a.png",
        "form-data; name*=UTF-8''{name}",
        'form-data; name="x"; name="{name}"',
        'attachment; name="{name}"',
        "form-data",
        'FORM-DATA; NAME="{name}"',
    ]
)


@st.composite
def odd_parts(draw: st.DrawFn) -> bytes:
    name = draw(names)
    disposition = draw(dispositions).format(name=name)
    headers = [f"Content-Disposition: {disposition}", *draw(extra_headers)]
    return "\r\n".join(headers).encode() + b"\r\n\r\n" + draw(values)


@st.composite
def plain_parts(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(PLAIN_NAMES))
    disposition = draw(st.sampled_from(honest)).format(name=name)
    value = draw(values) if "filename" in disposition else draw(st.text(max_size=20)).encode()
    return f"Content-Disposition: {disposition}\r\n\r\n".encode() + value


parts = st.one_of(plain_parts(), plain_parts(), odd_parts())


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    boundary = draw(st.sampled_from(BOUNDARIES))
    chosen = draw(st.lists(parts, max_size=3))
    if draw(st.integers(0, 3)):  # mostly honest: the checked model somewhere in the form
        chosen.insert(
            draw(st.integers(0, len(chosen))),
            b'Content-Disposition: form-data; name="model"\r\n\r\n' + CHEAP.encode(),
        )
    body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in chosen)
    body += b"--" + boundary + b"--\r\n"
    mutation = draw(st.sampled_from(["none"] * 6 + ["cut", "splice", "lf", "twice"]))
    if mutation == "cut":
        body = body[: draw(st.integers(0, len(body)))]
    elif mutation == "splice":
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.sampled_from(FRAGMENTS + [b"--" + boundary])) + body[at:]
    elif mutation == "lf":
        body = body.replace(b"\r\n", b"\n")
    elif mutation == "twice":
        body = body + body
    declared = draw(
        st.sampled_from(
            ['multipart/form-data; boundary="{b}"'] * 12
            + [
                "multipart/form-data; boundary={b}",
                'multipart/form-data; boundary="{b}"',
                "Multipart/Form-Data; Boundary={b}",
                "multipart/form-data; boundary={b}x",
                "multipart/form-data",
                "multipart/form-data; boundary={b}; boundary=y",
            ]
        )
    )
    return body, declared.format(b=boundary.decode())


def models_read_by_the_standard_library(received: Received) -> list[str]:
    """The forwarded form's model fields, as the standard library's MIME parser reads it."""
    head = f"Content-Type: {received.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + received.body)
    assert message.is_multipart() and not message.defects, message.defects
    found = []
    for item in message.iter_parts():
        disposition = item.get("content-disposition")
        if disposition is not None and disposition.params.get("name") == "model":
            found.append(item.get_payload(decode=True).decode())
    return found


@sqlite_only
def test_fuzz_multipart_bodies_on_the_proxy(
    live_url: str, vault: Vault, fake_upstream: FakeUpstream
) -> None:
    grant = make_grant(vault, entry("openai", models=[CHEAP], capabilities=["images"]))
    statuses: Counter[int] = Counter()
    client = httpx.Client(base_url=live_url, timeout=15)

    @given(case=bodies())
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: tuple[bytes, str]) -> None:
        body, content_type = case
        before = len(fake_upstream.received)
        answer = client.post(
            "/v1/openai/images/edits",
            content=body,
            headers={"authorization": f"Bearer {grant.token}", "content-type": content_type},
        )
        statuses[answer.status_code] += 1
        assert answer.status_code < 500, answer.text
        assert "error" in answer.json() or answer.status_code == 200
        forwarded = fake_upstream.received[before:]
        assert len(forwarded) == (1 if answer.status_code == 200 else 0)
        for received in forwarded:
            assert received.form is not None
            assert [v for n, v in received.form if n == "model"] == [CHEAP]
            assert models_read_by_the_standard_library(received) == [CHEAP]

    try:
        run()
    finally:
        client.close()
    print(f"\nmultipart fuzz: {sum(statuses.values())} bodies, statuses {dict(statuses)}")
    # The run reached every outcome: forwarded, refused as malformed, refused by the grant.
    assert {200, 400, 403} <= set(statuses), statuses
    assert httpx.get(f"{live_url}/healthz").status_code == 200


@pytest.mark.parametrize("model", [DEAR, f"{CHEAP}x"])
def test_the_fuzz_check_catches_a_forwarded_dearer_model(model: str) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\n'
        + model.encode()
        + b"\r\n--b--\r\n"
    )
    received = Received(
        "openai", "POST", "/", {}, {"content-type": "multipart/form-data; boundary=b"}, body
    )
    assert models_read_by_the_standard_library(received) != [CHEAP]
