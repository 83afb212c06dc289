"""Unit tests: the upstream path is always under the provider's base."""

from __future__ import annotations

import pytest

from okap_server.proxy.errors import InvalidPath
from okap_server.proxy.headers import client_response_headers, upstream_request_headers
from okap_server.proxy.paths import join_upstream, normalise_path


@pytest.mark.parametrize(
    "raw",
    [
        "..",
        "../../etc/passwd",
        "chat/../../x",
        "%2e%2e/%2e%2e/admin",
        "%2E%2E/x",
        "%252e%252e/secret",
        "%25252e%25252e/deep",
        "models/..%2f..%2fx",
        "..%5c..%5cx",
        "a/./b",
        "x%3Fkey=1",
        "x%23frag",
        "x%00y",
        "",
        "///",
    ],
)
def test_escapes_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPath):
        normalise_path(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("chat/completions", "chat/completions"),
        (
            "v1beta/models/gemini-2.5-flash:generateContent",
            "v1beta/models/gemini-2.5-flash:generateContent",
        ),
        (
            "v1beta/models/gemini-2.5-flash%3AstreamGenerateContent",
            "v1beta/models/gemini-2.5-flash:streamGenerateContent",
        ),
        ("//http://evil.example/x", "http:/evil.example/x"),
        ("files/file-abc%20def", "files/file-abc%20def"),
    ],
)
def test_paths_are_normalised(raw: str, expected: str) -> None:
    assert normalise_path(raw) == expected


def test_absolute_urls_stay_under_the_base() -> None:
    url = join_upstream("https://api.openai.com/v1", normalise_path("https://evil.example/x"))
    assert url.startswith("https://api.openai.com/v1/")


def test_hop_by_hop_credentials_host_and_cookies_are_not_forwarded() -> None:
    sent = upstream_request_headers(
        [
            ("Host", "vault.local"),
            ("Authorization", "Bearer okap_x"),
            ("X-Api-Key", "okap_x"),
            ("x-goog-api-key", "okap_x"),
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("X-Secret-Hop", "1"),
            ("TE", "trailers"),
            ("Cookie", "okap_session=abc"),
            ("anthropic-version", "2023-06-01"),
            ("Content-Type", "application/json"),
        ]
    )
    names = [name.lower() for name, _ in sent]
    assert names == ["anthropic-version", "content-type", "accept-encoding"]
    back = client_response_headers(
        [
            ("Transfer-Encoding", "chunked"),
            ("Set-Cookie", "__cf=1"),
            ("x-request-id", "r1"),
            ("Content-Length", "9"),
        ]
    )
    assert back == [("x-request-id", "r1")]


def test_the_key_goes_where_the_row_says() -> None:
    from okap_server.catalog import ProviderRow
    from okap_server.proxy.forwarding import build_upstream_request
    from okap_server.proxy.messages import ProxyRequest

    request = ProxyRequest(
        method="POST",
        provider="p",
        raw_path="chat/completions",
        query=[("key", "okap_x"), ("alt", "sse")],
        headers=[("authorization", "Bearer okap_x"), ("content-type", "application/json")],
        body=b"{}",
    )
    sent = {}
    for style in ("bearer", "x-api-key", "x-goog-api-key", "none"):
        row = ProviderRow("p", "P", "http://127.0.0.1:9/v1", "openai", auth_style=style)
        upstream = build_upstream_request(row, request, "chat/completions", b"{}", "REAL")
        sent[style] = {k: v for k, v in upstream.headers.items() if k in CREDENTIALS}
        assert str(upstream.url) == "http://127.0.0.1:9/v1/chat/completions?alt=sse"
    assert sent == {
        "bearer": {"authorization": "Bearer REAL"},
        "x-api-key": {"x-api-key": "REAL"},
        "x-goog-api-key": {"x-goog-api-key": "REAL"},
        "none": {},
    }


CREDENTIALS = {"authorization", "x-api-key", "x-goog-api-key"}
