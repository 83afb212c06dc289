"""Bodies are read as I-JSON (RFC 7493), and the inputs their bytes do not bound noted."""

from __future__ import annotations

import json

import pytest

from okap_server.proxy.ijson import NotIJson, check_charset, read_object

REFUSED = [
    b'{"a": 1, "a": 2}',
    b'{"a": {"b": 1, "b": 1}}',
    b'{"a": NaN}',
    b'{"a": -Infinity}',
    b'{"a": 1e400}',
    b'{"a": "\\udc00"}',
    b'{"a": "\\ud800x"}',
    b'{"a": "\xed\xa0\x80"}',
    b'{"a": "\xff"}',
    b"\xef\xbb\xbf{}",
    '{"a": 1}'.encode("utf-16"),
    b"[" * 100_000,
    b'{"a": 1} x',
]


@pytest.mark.parametrize("body", REFUSED)
def test_what_readers_could_read_two_ways_is_refused(body: bytes) -> None:
    with pytest.raises(NotIJson):
        read_object(body)


def test_what_every_reader_reads_alike_is_read() -> None:
    body = read_object(b'{"a": "\\ud83d\\ude00 \\\\ud800", "b": [1.5, -0, 1e300], "c": null}')
    assert body is not None and body["a"] == "\U0001f600 \\ud800"
    assert read_object(b"[1, 2]") is None
    check_charset("application/json; charset=UTF-8")
    with pytest.raises(NotIJson):
        check_charset('application/json; charset="utf-16"')


def test_parts_whose_input_the_bytes_do_not_bound_are_counted_wherever_they_are() -> None:
    body = read_object(
        json.dumps(
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]},
                    {"role": "tool", "content": [{"type": "image", "source": {"type": "url"}}]},
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]},
                ],
                "input": [
                    {"type": "input_file", "file_id": "f"},
                    {"type": "item_reference", "id": "i"},
                    {"type": "document", "source": {"type": "text", "data": "inline"}},
                    {"type": "document", "source": {"type": "url", "url": "u"}},
                ],
                "contents": [{"parts": [{"fileData": {"fileUri": "u"}}, {"inline_data": {}}]}],
                "tools": [{"type": "function", "parameters": {"properties": {"file": {}}}}],
            }
        ).encode()
    )
    assert body is not None
    assert body.facts.images == 2
    assert sorted(body.facts.opaque) == sorted(
        ["file", "input_file", "item_reference", "document", "fileData", "inline_data"]
    )
    assert body.facts.models == ["m"]


def test_a_plain_body_reads_as_json_reads_it() -> None:
    messages = [{"role": "user", "content": f"Tell me about the number {i}."} for i in range(20)]
    raw = json.dumps({"model": "gpt-4o-mini", "messages": messages, "max_tokens": 400}).encode()
    assert read_object(raw) == json.loads(raw)
