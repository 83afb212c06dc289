"""The whole-suite log sentinel (tests/security/log_sentinel.py) recognises what it hunts."""

from __future__ import annotations

import logging

from okap_server.grants.tokens import new_access_token, new_management_token
from tests.security.log_sentinel import Sentinel, secrets_in
from tests.support.grants import FAKE_KEYS


def test_it_finds_tokens_and_keys_and_ignores_lookalikes() -> None:
    token = new_access_token()
    assert secrets_in(f"Authorization: Bearer {token}") == [token]
    for key in FAKE_KEYS.values():
        assert secrets_in(f"upstream said: bad key {key}.") == [key]
    bad_checksum = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert secrets_in(f"okap_[redacted] key=[redacted] {bad_checksum} sk-...WXYZ") == []
    management = new_management_token()
    assert secrets_in(f"GET /api/v1/grants?token={management}") == [management]


def test_it_reads_messages_arguments_and_tracebacks_and_names_the_test() -> None:
    sentinel = Sentinel(current="tests/x.py::test_y")
    token = new_access_token()
    try:
        raise ValueError(f"no such token {token}")
    except ValueError as exc:
        record = logging.LogRecord(
            "okap.proxy",
            logging.ERROR,
            __file__,
            1,
            "failed: %s",
            ("x",),
            (type(exc), exc, exc.__traceback__),
        )
    sentinel.handle(record)
    app = logging.LogRecord("openai", logging.DEBUG, __file__, 1, token, None, None)
    sentinel.handle(app)  # the app's own SDK logger is not the vault's
    assert sentinel.hits == [
        "tests/x.py::test_y: logger 'okap.proxy' logged okap_" + token[5:8] + "…"
    ]
