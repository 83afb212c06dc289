"""Long-polls that wait for a person without holding a thread.

``POST /okap/authorize``, its poll URL (with ``Prefer: wait=N``, RFC 7240) and the reference
SDK's ``/okap/request`` wait a bounded time for the person's decision. A waiting poll is an
``asyncio.Event`` here, not a thread: one sweeper per process asks the database, every
:data:`CHECK_EVERY` seconds and in ONE query, which of the requests being waited on are no
longer pending (decided on this replica or any other, expired, or deleted), and wakes
their polls. Waiting costs the same few queries a second for one poll or a thousand, and
the thread pool the pages share is only touched briefly, to look a request up and to
build the answer.

Polls waiting at once are capped, in all (``okap_max_waiting``) and per request
(``okap_max_waiting_per_request``); a poll past a cap is answered at once with the
request's current state (``pending`` and its ``interval``), as a poll without ``Prefer``
is, so nothing is refused that an honest app needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from okap_server.authorization.okap_binding import settled_among
from okap_server.context import Vault

log = logging.getLogger("okap.web")

CHECK_EVERY = 0.25
# How many requests one sweep asks about at most per query (SQL parameter limits).
SWEEP_BATCH = 500


@dataclass
class _Waiters:
    decided: asyncio.Event = field(default_factory=asyncio.Event)
    count: int = 0


class DecisionWatch:
    """The process's waiting polls, keyed by request id, and the sweeper that wakes them."""

    def __init__(self, vault: Vault, every: float = CHECK_EVERY) -> None:
        self.vault = vault
        self.every = every
        self._waiting: dict[str, _Waiters] = {}
        self._total = 0
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return self._total

    @contextmanager
    def slot(self, request_id: str) -> Iterator[asyncio.Event | None]:
        """An event set once ``request_id`` may be decided; None when a cap is reached
        (then answer at once)."""
        settings = self.vault.settings
        waiters = self._waiting.get(request_id)
        if self._total >= settings.okap_max_waiting or (
            waiters is not None and waiters.count >= settings.okap_max_waiting_per_request
        ):
            yield None
            return
        if waiters is None:
            waiters = self._waiting[request_id] = _Waiters()
        waiters.count += 1
        self._total += 1
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep())
        try:
            yield waiters.decided
        finally:
            waiters.count -= 1
            self._total -= 1
            if waiters.count == 0:
                del self._waiting[request_id]

    async def _sweep(self) -> None:
        """Wake the polls of settled requests until no poll waits (then stop)."""
        try:
            while self._waiting:
                await asyncio.sleep(self.every)
                ids = [key for key, w in self._waiting.items() if not w.decided.is_set()]
                if not ids:
                    continue
                try:
                    settled = await asyncio.to_thread(self._settled, ids)
                except SQLAlchemyError as exc:  # the database is away: the polls time out
                    log.warning("long-poll check skipped: %s", type(exc).__name__)
                    continue
                for key in settled:
                    waiters = self._waiting.get(key)
                    if waiters is not None:
                        waiters.decided.set()
        finally:
            self._sweeper = None

    def _settled(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        with self.vault.session() as session:
            for start in range(0, len(ids), SWEEP_BATCH):
                found |= settled_among(session, ids[start : start + SWEEP_BATCH])
        return found
