"""When each provider key was last used, written with the settlement batch.

The dashboard's Keys page and ``okap-server keys list`` show it. The proxy's request path
never touches ``provider_key``: the settled batch already names each request's grant and
provider, and the grant's details name the key that served it, so one read of those grants
and one guarded update per key ride on a transaction that is written anyway."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from okap_server.db.cursor import Cursor, Sql
from okap_server.grants.models import Grant
from okap_server.proxy.outcome import Outcome

GRANT: Any = Grant.__table__  # type: ignore[attr-defined]
# Never moves backwards: a batch replayed late (journal.py) leaves a newer time alone.
_TOUCH = Sql(
    "UPDATE provider_key SET last_used_at = :when "
    "WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :when)"
)


def touch_keys(conn: Connection, batch: Iterable[Outcome]) -> None:
    """Set ``last_used_at`` of the keys behind the forwarded requests of ``batch``."""
    used: dict[tuple[str, str], datetime] = {}
    for item in batch:
        if item.admitted and not item.abandoned:
            key = (item.grant_id, item.provider)
            used[key] = max(item.created_at, used.get(key, item.created_at))
    if not used:
        return
    ids = sorted({grant_id for grant_id, _ in used})
    rows = conn.execute(select(GRANT.c.id, GRANT.c.details).where(GRANT.c.id.in_(ids)))
    details: dict[str, list[dict[str, Any]]] = {row.id: row.details for row in rows}
    latest: dict[str, datetime] = {}
    for (grant_id, provider), when in used.items():
        for entry in details.get(grant_id) or ():
            key_id = entry.get("key_id")
            if key_id and entry.get("provider") == provider:
                latest[key_id] = max(when, latest.get(key_id, when))
    cursor = Cursor(conn)
    cursor.run_many(
        _TOUCH, [{"id": k, "when": cursor.timestamp(w)} for k, w in sorted(latest.items())]
    )
