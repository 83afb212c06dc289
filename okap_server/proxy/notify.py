"""Grant changes told to every replica at once, with PostgreSQL ``LISTEN``/``NOTIFY``.

Each replica caches grant views for ``Settings.proxy_grant_cache_seconds`` (0.5 s), which
alone bounds how long a revoked token keeps working on another replica. This channel makes
it immediate in the usual case: the replica where a grant is revoked or edited sends
``NOTIFY okap_grant_changed, '<grant id>'`` after the commit, and every replica's listener
thread drops that grant from its cache. A listener that lost its connection clears the
whole cache when it is back (it may have missed notices), and the TTL covers the gap.

SQLite vaults are one process, so there is nothing to tell: the channel is not started.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from okap_server.db.engine import POSTGRES_CONNECT_ARGS

log = logging.getLogger("okap.proxy.notify")

CHANNEL = "okap_grant_changed"
_NOTIFY = text("SELECT pg_notify(:channel, :grant_id)")


def libpq_url(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg://...`` as libpq wants it, keeping its query parameters."""
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


class GrantChangeChannel:
    """Publishes grant changes and listens for other replicas' in a daemon thread."""

    def __init__(
        self,
        engine: Engine,
        on_change: Callable[[str], None],
        on_reset: Callable[[], None],
        *,
        poll_seconds: float = 0.5,
        reconnect_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        self.on_change = on_change
        self.on_reset = on_reset
        self.poll_seconds = poll_seconds
        self.reconnect_seconds = reconnect_seconds
        self.listening = threading.Event()  # set while LISTEN is active (tests wait on it)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def supported(engine: Engine) -> bool:
        return engine.dialect.name == "postgresql"

    def publish(self, grant_id: str) -> None:
        """A grant listener: tell every replica. Never raises: the change is committed, and
        a replica that misses the notice still sees it when its cache entry expires."""
        try:
            with self.engine.begin() as conn:
                conn.execute(_NOTIFY, {"channel": CHANNEL, "grant_id": grant_id})
        except Exception as exc:
            log.warning("could not notify other replicas of a grant change: %s", type(exc).__name__)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="okap-grant-listener", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        url = self.engine.url.render_as_string(hide_password=False)
        in_url = set(self.engine.url.query)
        options = {k: v for k, v in POSTGRES_CONNECT_ARGS.items() if k not in in_url}
        conn = psycopg.connect(libpq_url(url), autocommit=True, **options)  # type: ignore[arg-type]
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    if not first:
                        self.on_reset()  # notices may have been missed while away
                    first = False
                    self.listening.set()
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=self.poll_seconds):
                            self.on_change(notice.payload)
            except psycopg.Error as exc:
                if self.listening.is_set():
                    log.warning("grant change listener lost its connection: %s", type(exc).__name__)
                first = False
            except Exception:  # a bug in a callback must not end the listener
                log.exception("grant change listener failed")
            self.listening.clear()
            self._stop.wait(self.reconnect_seconds)
