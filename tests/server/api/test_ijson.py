"""The management API reads JSON bodies as I-JSON (RFC 7493), with the proxy's reader: a
body two JSON readers could take two ways is refused (422 problem naming ``body``) before
any use case runs, and nothing is stored; its values, a secret perhaps, are never echoed."""

from __future__ import annotations

import httpx
import pytest

from tests.server.api.conftest import problem_of

SECRET = "sk-proj-IJSONkey0123456789abcdefghijklmnXYZ"
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "why"),
    [
        (
            '{"provider": "openai", "label": "a", "secret": "sk-decoy", "secret": "%s"}',
            JSON,
            "twice",
        ),
        ('{"provider": "openai", "label": "\\ud800", "secret": "%s"}', JSON, "surrogate"),
        ('{"provider": "openai", "label": NaN, "secret": "%s"}', JSON, "NaN"),
        ('{"provider": "openai", "label": 1e400, "secret": "%s"}', JSON, "too large"),
        (
            '{"provider": "openai", "label": "a", "secret": "%s"}',
            {"Content-Type": "application/json; charset=utf-16"},
            "UTF-8",
        ),
    ],
    ids=["duplicate-key", "lone-surrogate", "nan", "huge-number", "charset"],
)
def test_a_body_that_is_not_i_json_is_refused(
    api: httpx.Client, body: str, headers: dict[str, str], why: str
) -> None:
    refused = api.post("/provider-keys", content=(body % SECRET).encode(), headers=headers)
    assert refused.status_code == 422, refused.text
    problem = problem_of(refused)
    assert problem["type"] == "urn:okap:problem:invalid-request" and problem["field"] == "body"
    assert why in problem["detail"]
    assert SECRET not in refused.text
    assert api.get("/provider-keys").json()["data"] == []  # nothing was stored


def test_a_duplicate_in_a_nested_object_is_refused_too(api: httpx.Client) -> None:
    body = (
        '{"name": "job", "authorization_details": [{"type": "ai_model_access", '
        '"provider": "openai", "limits": {"daily_spend": 1, "daily_spend": 1000}}]}'
    )
    refused = api.post("/tokens", content=body.encode(), headers=JSON)
    assert refused.status_code == 422 and problem_of(refused)["field"] == "body"
    assert "daily_spend" in problem_of(refused)["detail"]


def test_an_i_json_body_is_read_as_before(api: httpx.Client) -> None:
    body = '{"provider": "openai", "label": "caf\\u00e9 \\ud83d\\ude00", "secret": "%s"}'
    added = api.post("/provider-keys", content=(body % SECRET).encode(), headers=JSON)
    assert added.status_code == 201, added.text
    assert added.json()["label"] == "café 😀"
