"""A whole-suite sentinel: every log record emitted while the test suite runs, at whatever
level each test runs its loggers (DEBUG where tests turn it on), tracebacks included, is
searched for an okap_ or okapm_ token (its shape and checksum) or a provider key (the shapes the
suite's fake keys and real providers use). A hit fails the test during which it was logged
(an error at its teardown), naming the logger, never printing the secret.

Every record that passes its logger's level and filters is seen (``Logger.callHandlers``
is wrapped for the session), so uvicorn's non-propagating loggers are searched too.
Wired in ``tests/conftest.py`` by importing the two autouse fixtures (and
``pytest_terminal_summary``, which lists hits at the end of a run without xdist). The app's
own SDK loggers (openai, anthropic, google_genai) are the app's, not the vault's, and are
not searched.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from okap_server.grants.tokens import looks_like_management_token, looks_like_token

TOKEN_SHAPE = re.compile(r"okap_[0-9A-Za-z]{49}")
MANAGEMENT_SHAPE = re.compile(r"okapm_[0-9A-Za-z]{49}")
KEY_SHAPES = re.compile(
    r"(sk-(?:proj|ant-api03|ant|live|svcacct)-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{30,}"
    r"|sk-[A-Za-z0-9]{32,})"
)
APP_LOGGERS = ("openai", "anthropic", "google_genai", "google.genai")
_FORMATTER = logging.Formatter()


def secrets_in(text: str) -> list[str]:
    found = [m for m in TOKEN_SHAPE.findall(text) if looks_like_token(m)]
    found += [m for m in MANAGEMENT_SHAPE.findall(text) if looks_like_management_token(m)]
    return found + KEY_SHAPES.findall(text)


@dataclass
class Sentinel(logging.Handler):
    current: str = "(collection)"
    records: int = 0
    hits: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.DEBUG)

    def __hash__(self) -> int:
        return id(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(APP_LOGGERS):
            return
        self.records += 1
        try:
            text = f"{record.getMessage()} {record.args!r}"
        except Exception:  # a record whose arguments do not format
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info:
            text += _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            text += record.exc_text
        for secret in secrets_in(text):
            masked = secret[:8] + "…"
            self.hits.append(f"{self.current}: logger {record.name!r} logged {masked}")


_SENTINEL = Sentinel()


@pytest.fixture(scope="session", autouse=True)
def log_sentinel() -> Iterator[Sentinel]:
    """Sees every record that passed its logger's level and filters (the vault's redaction
    filter included), whatever handlers uvicorn's logging config installs or whether the
    logger propagates: ``Logger.callHandlers`` is where every such record goes next."""
    original = logging.Logger.callHandlers

    def call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
        _SENTINEL.handle(record)
        original(self, record)

    logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign]
    try:
        yield _SENTINEL
    finally:
        logging.Logger.callHandlers = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _sentinel_names_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Attributes records to the running test, and fails that test (an error at teardown,
    which also works under pytest-xdist) if a secret was logged while it ran."""
    _SENTINEL.current = request.node.nodeid
    before = len(_SENTINEL.hits)
    yield
    _SENTINEL.current = "(between tests)"
    new = _SENTINEL.hits[before:]
    if new:
        pytest.fail("a secret appeared in log records:\n" + "\n".join(sorted(set(new))))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    if not _SENTINEL.hits:
        return
    terminalreporter.section("secrets in log records", sep="!", red=True)
    for hit in sorted(set(_SENTINEL.hits))[:50]:
        terminalreporter.line(hit)
    terminalreporter._session.exitstatus = pytest.ExitCode.TESTS_FAILED
