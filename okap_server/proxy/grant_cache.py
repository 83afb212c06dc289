"""The proxy's grant cache: token hash -> grant view, read once and kept in process.

A cached view lives at most ``Settings.proxy_grant_cache_seconds`` and is dropped at once
when ``Vault.grant_changed`` reports the grant revoked or edited in this process, so a
revocation takes effect on the very next request here, and within the TTL on any replica.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import anyio
import anyio.to_thread

from okap_server.grants.view import GrantView
from okap_server.proxy.errors import ProxyUnavailable


class GrantCache:
    """Token hash → grant view, bounded, with a TTL and immediate invalidation."""

    def __init__(
        self,
        load: Callable[[str], GrantView | None],
        *,
        ttl_seconds: float,
        max_entries: int = 100_000,
        wait_seconds: float = 5.0,
    ) -> None:
        self._load = load
        self._ttl = ttl_seconds
        self._wait = wait_seconds
        self._max = max_entries
        self._views: dict[str, tuple[float, GrantView | None]] = {}
        self._loading: dict[str, asyncio.Future[GrantView | None]] = {}
        self._hashes_of: dict[str, set[str]] = {}
        self._invalidations = itertools.count(1)  # next() is atomic: listeners may run in
        self._generation = 0  # a worker thread while lookups run on the event loop

    async def lookup(self, hashed: str) -> GrantView | None:
        now = time.monotonic()
        cached = self._views.get(hashed)
        if cached is not None and cached[0] > now:
            return cached[1]
        pending = self._loading.get(hashed)
        if pending is not None:  # one load per token at a time, however many requests wait
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request itself was cancelled
                return await self.lookup(hashed)  # the loading request went away: load anew
        loading: asyncio.Future[GrantView | None] = asyncio.get_running_loop().create_future()
        self._loading[hashed] = loading
        generation = self._generation
        try:
            view = await self._load_within(hashed)
        except asyncio.CancelledError:
            loading.cancel()
            raise
        except Exception as exc:
            loading.set_exception(exc)
            loading.exception()  # retrieved here, so an unawaited failure is not logged
            raise
        finally:
            del self._loading[hashed]
        loading.set_result(view)
        if generation == self._generation:  # no invalidation raced the load
            self._store(hashed, view, now + self._ttl)
        return view

    async def _load_within(self, hashed: str) -> GrantView | None:
        """The load, waited for at most ``wait_seconds``: past that the request is answered
        503 and the thread is left to finish (or fail) on its own, so a database that never
        answers holds a thread, not the app. Every request waiting on this load fails too."""
        try:
            with anyio.fail_after(self._wait):
                return await anyio.to_thread.run_sync(self._load, hashed, abandon_on_cancel=True)
        except TimeoutError:
            raise ProxyUnavailable() from None

    def _store(self, hashed: str, view: GrantView | None, until: float) -> None:
        if len(self._views) >= self._max:
            oldest = next(iter(self._views))
            self.forget(oldest)
        self._views[hashed] = (until, view)
        if view is not None:
            for grant_id in (view.id, *view.ancestry):  # an ancestor's change drops it too
                self._hashes_of.setdefault(grant_id, set()).add(hashed)

    def forget(self, hashed: str) -> None:
        entry = self._views.pop(hashed, None)
        if entry is not None and entry[1] is not None:
            self._hashes_of.pop(entry[1].id, None)

    def invalidate(self, grant_id: str) -> None:
        """A grant listener: called after a grant is revoked or edited."""
        self._generation = next(self._invalidations)
        for hashed in self._hashes_of.pop(grant_id, set()):
            self._views.pop(hashed, None)

    def clear(self) -> None:
        self._generation = next(self._invalidations)
        self._views.clear()
        self._hashes_of.clear()
