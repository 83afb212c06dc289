"""The grant change channel (LISTEN/NOTIFY): a notice reaches the other replica, and a
listener that lost its connection comes back by itself and drops its whole cache (it may
have missed notices meanwhile)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine, make_url

from okap_server.db.engine import make_engine
from okap_server.proxy.notify import GrantChangeChannel
from tests.reliability.tcp_relay import tcp_relay
from tests.support.databases import fresh_postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_url() as url:
        yield url


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class Heard:
    def __init__(self) -> None:
        self.changed: list[str] = []
        self.resets = 0
        self.lock = threading.Lock()

    def change(self, grant_id: str) -> None:
        with self.lock:
            self.changed.append(grant_id)

    def reset(self) -> None:
        with self.lock:
            self.resets += 1


def channel(engine: Engine, heard: Heard) -> GrantChangeChannel:
    return GrantChangeChannel(
        engine, heard.change, heard.reset, poll_seconds=0.1, reconnect_seconds=0.1
    )


def test_a_notice_reaches_the_other_replica_and_survives_a_lost_connection(pg_url: str) -> None:
    url = make_url(pg_url)
    sender_engine = make_engine(pg_url)
    with tcp_relay(url.host or "127.0.0.1", url.port or 5432) as relay:
        relayed = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
        listener_engine = make_engine(relayed)
        heard = Heard()
        sender, listener = channel(sender_engine, Heard()), channel(listener_engine, heard)
        listener.start()
        try:
            assert listener.listening.wait(5)
            sender.publish("grt_one")
            wait_for(lambda: heard.changed == ["grt_one"])
            assert heard.resets == 0

            relay.cut()
            wait_for(lambda: not listener.listening.is_set())
            sender.publish("grt_missed")  # sent while the listener is away: not heard
            time.sleep(0.3)  # the relay's closed listener lingers until its accept() times out
            relay.restore()
            assert listener.listening.wait(5)
            assert heard.resets == 1  # so the replica dropped every cached grant instead
            sender.publish("grt_two")
            wait_for(lambda: heard.changed == ["grt_one", "grt_two"])
        finally:
            listener.stop()
            listener_engine.dispose()
    sender_engine.dispose()


def test_publishing_without_a_database_does_not_raise(pg_url: str) -> None:
    """The revocation is committed already; a failed notice only falls back to the TTL."""
    url = make_url(pg_url)
    with tcp_relay(url.host or "127.0.0.1", url.port or 5432) as relay:
        relayed = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
        engine = make_engine(relayed)
        relay.cut()
        channel(engine, Heard()).publish("grt_lost")
        engine.dispose()
