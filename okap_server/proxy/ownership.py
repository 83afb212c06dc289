"""Which stored objects a grant may use: only those it created.

A provider keeps one store of objects per organisation (stored responses and completions,
files, batches, caches), and a key is shared by every app its owner grants it to. So a grant
may not list a collection, and may read, change, delete or name in a body (``file_id``,
``previous_response_id``...) only the objects the vault saw it create: the ids the answers
to its own requests named (``Route.owns``), kept in ``owned_object``.

Cost: nothing on a request that names no stored object (the common chat call). Creating an
object adds a row to the audit's batched write, off the request path. Using one by id costs
a primary-key lookup (a thread hop and one query) the first time this process sees it, and
nothing after. An id created a moment ago through another worker or replica may not be
written yet: a miss is looked up once more after the audit's flush interval, so only a
refusal, or that race, waits.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.engine import Engine

from okap_server.proxy import errors
from okap_server.proxy.models import OwnedObject
from okap_server.proxy.providers.base import Adapter, Route

OWNED: Any = OwnedObject.__table__  # type: ignore[attr-defined]
MAX_OBJECT_ID = 200
MAX_REFERENCES = 256


# Over this size a body is walked without scanning its bytes first: a big body is big for
# its strings (an image, a document, a file), which the walk passes over at no cost.
SCAN_AT_MOST = 1024 * 1024


def _may_reference(adapter: Adapter, raw: bytes) -> bool:
    """Whether ``raw`` may name a stored object: one of the adapter's needles, or a JSON
    escape (``"file\\u005fid"`` is ``"file_id"`` to every JSON reader)."""
    if len(raw) > SCAN_AT_MOST:
        return True
    return b"\\u" in raw or any(needle in raw for needle in adapter.reference_needles)


class OwnedObjects:
    """The objects each grant owns, per provider: in the database, and remembered here."""

    def __init__(self, engine: Engine, *, settle_seconds: float, remembered: int = 50_000):
        self.engine = engine
        self.settle_seconds = settle_seconds
        self.remembered = remembered
        self._known: dict[tuple[str, str, str], None] = {}

    def remember(self, grant_id: str, provider: str, ids: list[str]) -> None:
        """Ids an answer just named (the recorder writes them): usable at once here."""
        for object_id in ids:
            if len(self._known) >= self.remembered:
                del self._known[next(iter(self._known))]
            self._known[(grant_id, provider, object_id)] = None

    async def require(self, grant_id: str, provider: str, ids: list[str]) -> None:
        """Return if ``grant_id`` owns every one of ``ids``; 403 ``object_not_owned`` if not."""
        missing = {i for i in ids if (grant_id, provider, i) not in self._known}
        if not missing:
            return
        too_long = [i for i in missing if len(i) > MAX_OBJECT_ID]
        if too_long or len(missing) > MAX_REFERENCES:
            raise self._refusal(sorted(too_long or missing)[0])
        missing -= await self._stored(grant_id, provider, missing)
        if missing:  # created a moment ago through another process: wait for its write
            await asyncio.sleep(self.settle_seconds)
            missing -= {i for i in missing if (grant_id, provider, i) in self._known}
            missing -= await self._stored(grant_id, provider, missing)
        if missing:
            raise self._refusal(sorted(missing)[0])
        self.remember(grant_id, provider, list(ids))

    async def _stored(self, grant_id: str, provider: str, ids: set[str]) -> set[str]:
        if not ids:
            return set()

        def lookup() -> set[str]:
            query = select(OWNED.c.object_id).where(
                OWNED.c.grant_id == grant_id,
                OWNED.c.provider == provider,
                OWNED.c.object_id.in_(sorted(ids)),
            )
            with self.engine.connect() as conn:
                return {row[0] for row in conn.execute(query)}

        return await anyio.to_thread.run_sync(lookup)

    @staticmethod
    def _refusal(object_id: str) -> errors.ObjectNotOwned:
        return errors.ObjectNotOwned(
            f"'{object_id[:100]}' was not created through this okap grant. The key is shared "
            "with other apps, so a grant can use only the stored objects it created."
        )


async def check_objects(
    objects: OwnedObjects,
    adapter: Adapter,
    route: Route,
    grant_id: str,
    provider: str,
    body: dict[str, Any] | None,
    raw: bytes,
) -> None:
    """Refuse a listing of the organisation's objects, and any use of one by id, in the
    path or anywhere in the body, that this grant does not own."""
    if route.listing:
        raise errors.ListingNotAllowed()
    wanted = [route.object_id] if route.object_id is not None else []
    if body is not None and adapter.reference_keys and _may_reference(adapter, raw):
        wanted.extend(adapter.references(body))
    if wanted:
        await objects.require(grant_id, provider, wanted)
