"""The vault's dependencies, built once at start and passed explicitly (no module globals)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import jinja2
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from okap_server.catalog import ProviderCatalog
from okap_server.db.engine import make_engine, with_session_timeouts, without_session_timeouts
from okap_server.db.migrate import upgrade
from okap_server.grants import lifecycle
from okap_server.prices import Prices
from okap_server.settings import Settings
from okap_server.vault.crypto import KeyRing
from okap_server.vault.keys import KeyStore
from okap_server.vault.masterkey import load_keyring
from okap_server.web.templating import make_templates


@dataclass
class Vault:
    """Everything a request handler or CLI command needs, in one typed object."""

    settings: Settings
    engine: Engine
    keyring: KeyRing
    keys: KeyStore
    providers: ProviderCatalog
    templates: jinja2.Environment
    # Called with a grant id after a grant is revoked or edited (and committed), so caches
    # such as the proxy's grant cache drop it at once.
    grant_listeners: list[Callable[[str], None]] = field(default_factory=list)
    # The proxy's upstream HTTP transport; None for real network I/O (tests may inject one).
    proxy_transport: httpx.AsyncBaseTransport | None = None

    @functools.cached_property
    def prices(self) -> Prices:
        """The vault's prices, read on first use: the proxy, the consent page, the dashboard
        and the command line share one, and commands that price nothing skip the read."""
        return Prices.load(self.settings, self.providers.prices_providers())

    def grant_changed(self, grant_id: str) -> None:
        for listener in self.grant_listeners:
            listener(grant_id)

    def session(self) -> Session:
        """A session whose commits tell ``grant_listeners`` of the grants they changed
        (``grants.lifecycle``)."""
        return lifecycle.bind(Session(self.engine, expire_on_commit=False), self.grant_changed)

    def dispose(self) -> None:
        self.engine.dispose()


# Any constant, distinct from the migration lock (db/migrate.py).
STARTUP_LOCK_ID = 0x6F6B6171


@contextmanager
def startup_lock(engine: Engine) -> Iterator[None]:
    """Replicas starting together on PostgreSQL take turns to migrate and to store the master
    key's check value, so a first ``docker compose up`` cannot race (a session-level
    advisory lock, released even if start-up fails). SQLite vaults are one process."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        without_session_timeouts(conn)  # waiting for another replica's migration is fine
        conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": STARTUP_LOCK_ID})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": STARTUP_LOCK_ID})
            with_session_timeouts(conn)
            conn.commit()


def open_vault(settings: Settings, *, migrate: bool = True, create_key: bool = True) -> Vault:
    """Connect, migrate and load the master key. Raises MasterKeyError on a wrong key."""
    engine = make_engine(settings.effective_database_url)
    try:
        with startup_lock(engine):
            if migrate:
                upgrade(engine)
            keyring = load_keyring(settings, engine, create=create_key)
    except BaseException:
        engine.dispose()
        raise
    return Vault(
        settings=settings,
        engine=engine,
        keyring=keyring,
        keys=KeyStore(keyring),
        providers=ProviderCatalog.from_settings(settings),
        templates=make_templates(settings),
    )
