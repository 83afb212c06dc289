"""Shared fixtures: settings, a vault on SQLite and on PostgreSQL, a live server, accounts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from okap_server.accounts.service import create_account
from okap_server.context import Vault, open_vault
from okap_server.settings import Settings
from tests.security.log_sentinel import (  # noqa: F401 (whole-suite search of log records)
    _sentinel_names_the_test,
    log_sentinel,
    pytest_terminal_summary,
)
from tests.support.databases import database_url_for, postgres_available
from tests.support.fake_upstream import FakeUpstream, running_fake_upstream
from tests.support.live import free_port, serve_vault

_PG = postgres_available()

OWNER = ("alice", "correct horse battery")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _PG:
        return
    skip = pytest.mark.skip(reason="PostgreSQL is not reachable on 127.0.0.1:5432")
    for item in items:
        if "postgres" in item.keywords or "[postgres" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that uses the database runs on both back ends."""
    return str(request.param)


@pytest.fixture
def okap_home(tmp_path: Path) -> Path:
    home = tmp_path / "okap-home"
    return home


@pytest.fixture
def settings(okap_home: Path, backend: str) -> Iterator[Settings]:
    port = free_port()
    with database_url_for(backend, okap_home) as url:
        yield Settings(
            home=okap_home,
            database_url=url,
            port=port,
            public_url=f"http://127.0.0.1:{port}",
        )


@pytest.fixture
def vault(settings: Settings) -> Iterator[Vault]:
    opened = open_vault(settings)
    yield opened
    opened.dispose()


@pytest.fixture
def live_url(vault: Vault) -> Iterator[str]:
    with serve_vault(vault) as url:
        yield url


@pytest.fixture
def page_url(vault: Vault, live_url: str) -> str:
    """The live vault's pages (``localhost``, for the tests' ``127.0.0.1`` public URL): a
    page requested on the IP literal is redirected there (``web/page_origin.py``)."""
    return vault.settings.effective_page_url


@pytest.fixture
def owner(vault: Vault) -> tuple[str, str]:
    """The vault's first account (an admin): (username, password)."""
    with vault.session() as session:
        create_account(session, OWNER[0], OWNER[1], is_admin=True)
        session.commit()
    return OWNER


@pytest.fixture(scope="session")
def fake_upstream_server() -> Iterator[FakeUpstream]:
    """One fake OpenAI + Anthropic + Gemini API for the session (tests/support/fake_upstream.py)."""
    with running_fake_upstream() as fake:
        yield fake


@pytest.fixture
def fake_upstream(fake_upstream_server: FakeUpstream) -> Iterator[FakeUpstream]:
    """The fake upstream, with its record, scripts and usage reset around each test.
    Point a vault at it with ``Settings(upstreams=fake_upstream.upstreams())``."""
    fake_upstream_server.reset()
    yield fake_upstream_server
    fake_upstream_server.reset()
